package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// LeaseBucket holds zdm's leases; a value expires one TTL after it was
// last written, so a holder that stops renewing loses its lease.
const LeaseBucket = "ZDM_LEASES"

// ErrLeaseLost means a lease's holder can no longer be sure it holds it.
var ErrLeaseLost = errors.New("lease lost")

// Lease is one key of LeaseBucket that one holder at a time may own.
//
// Safety rests on time measured by each side's own clock: another holder
// takes a value over once it has seen it unrenewed for a TTL, or once the
// server forgot it a TTL after storing it, and the holder gives the lease
// up two thirds of a TTL after it sent its last successful renewal, so it
// has stopped a third of a TTL before anyone else can take over.
type Lease struct {
	kv     jetstream.KeyValue
	nc     *nats.Conn
	key    string
	holder string
	ttl    time.Duration
	logger *slog.Logger
	// endpoints, if set, gives what the holder advertises with every write.
	endpoints func() map[string]string
	// held is until when this holder surely holds the lease (HeldUntil).
	held atomic.Pointer[time.Time]
}

// LeaseValue is what a lease's key holds.
type LeaseValue struct {
	Holder string    `json:"holder"`
	Since  time.Time `json:"since"`
	// Endpoints is what the holder serves for the others to reach it,
	// by name (the saga lease's holder: its Milvus endpoints by cluster).
	Endpoints map[string]string `json:"endpoints,omitempty"`
	// Revision is the write's (a deletion's too), which grows with every
	// write of the lease's key; 0 for a lease read as not held.
	Revision uint64 `json:"-"`
}

// Advertise has every write of the lease carry what f gives, so that the
// others learn where the holder serves as soon as it takes the lease and
// whenever that changes (at the next renewal). Call it before Acquire.
func (l *Lease) Advertise(f func() map[string]string) { l.endpoints = f }

// HeldUntil is until when, by this holder's clock, it surely holds the
// lease: two thirds of a TTL after the write that took it or last renewed
// it was sent, when Keep gives it up unless renewed. Before a term, and
// after one given back, it is a time already past.
func (l *Lease) HeldUntil() time.Time {
	if u := l.held.Load(); u != nil {
		return *u
	}
	return time.Time{}
}

// grace is how long after a write was sent the holder trusts it.
func (l *Lease) grace() time.Duration { return 2 * l.ttl / 3 }

// hold records term t as held, for HeldUntil, and returns until when.
func (l *Lease) hold(t Term) time.Time {
	until := t.sent.Add(l.grace())
	l.held.Store(&until)
	return until
}

// value is what the holder writes.
func (l *Lease) value(since time.Time) []byte {
	v := LeaseValue{Holder: l.holder, Since: since}
	if l.endpoints != nil {
		v.Endpoints = l.endpoints()
	}
	data, _ := json.Marshal(v)
	return data
}

// Lease opens the lease named key for holder. Every holder of one lease
// must use the same ttl.
func (s *Store) Lease(ctx context.Context, key, holder string, ttl time.Duration, logger *slog.Logger) (*Lease, error) {
	kv, err := s.leaseBucket(ctx, ttl)
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", key, err)
	}
	return s.leaseIn(kv, key, holder, ttl, logger), nil
}

// leaseBucket opens LeaseBucket with the TTL every lease in it uses.
func (s *Store) leaseBucket(ctx context.Context, ttl time.Duration) (jetstream.KeyValue, error) {
	if ttl < 300*time.Millisecond {
		return nil, fmt.Errorf("a ttl of %s is too short to renew", ttl)
	}
	kv, err := ensureKV(ctx, s.js, jetstream.KeyValueConfig{
		Bucket: LeaseBucket, History: 1, Storage: jetstream.FileStorage, TTL: ttl, Replicas: s.replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", LeaseBucket, err)
	}
	return kv, nil
}

// leaseIn is the lease named key of the opened lease bucket kv.
func (s *Store) leaseIn(kv jetstream.KeyValue, key, holder string, ttl time.Duration, logger *slog.Logger) *Lease {
	if logger == nil {
		logger = slog.Default()
	}
	return &Lease{kv: kv, nc: s.js.Conn(), key: key, holder: holder, ttl: ttl, logger: logger}
}

// Holder reads who holds the lease now ("" if nobody).
func (l *Lease) Holder(ctx context.Context) (LeaseValue, error) {
	e, err := l.kv.Get(ctx, l.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return LeaseValue{}, nil
	}
	if err != nil {
		return LeaseValue{}, fmt.Errorf("lease %s: %w", l.key, err)
	}
	var v LeaseValue
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return LeaseValue{}, fmt.Errorf("lease %s: %w", l.key, err)
	}
	v.Revision = e.Revision()
	return v, nil
}

// Term is one holding of a lease: its revision, which grows with every
// write, and when the renewal that wrote it was sent.
type Term struct {
	Revision uint64
	sent     time.Time
}

// Acquire waits until the lease is free, takes it and returns the term.
// A value left by a holder of the same name (this holder before a
// restart) is taken over at once.
//
// A value its holder has not renewed for a TTL, by this process's clock
// from when it first saw it, is taken over there and then, by a write
// that expects its revision: the holder gave the lease up a third of a
// TTL before (Keep), and a renewal of it stored meanwhile makes the write
// fail. Waiting instead for the server to forget the value added up to
// 250 ms (its expiry timer's granularity) and a poll to every takeover.
// The lease's key is watched, so that each renewal is seen as it is
// stored; polls go on beside it, should the watch fall behind.
func (l *Lease) Acquire(ctx context.Context) (Term, error) {
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	revs := l.watch(wctx)
	poll := time.NewTicker(l.ttl / 6)
	defer poll.Stop()
	var seen sighting
	logged := false
	for {
		t, rev, err := l.try(ctx)
		if err == nil {
			return t, nil
		}
		seen = seen.of(rev)
		if !errors.Is(err, jetstream.ErrKeyExists) && !IsConflict(err) && !logged && ctx.Err() == nil {
			l.logger.Warn("lease not taken; trying again", "lease", l.key, "err", err)
			logged = true
		}
		for waiting := true; waiting; {
			var due <-chan time.Time
			var timer *time.Timer
			if seen.rev != 0 {
				timer = time.NewTimer(time.Until(seen.at.Add(l.ttl)))
				due = timer.C
			}
			select {
			case <-ctx.Done():
				return Term{}, ctx.Err()
			case <-poll.C:
				waiting = false
			case <-due:
				if t, err := l.takeOver(ctx, seen.rev); err == nil {
					return t, nil
				}
				// Renewed after all, or forgotten: read it again.
				seen, waiting = sighting{}, false
			case rev, ok := <-revs:
				switch {
				case !ok:
					revs = nil
				case rev == 0: // deleted: free
					seen, waiting = sighting{}, false
				default:
					seen = seen.of(rev)
				}
			}
			if timer != nil {
				timer.Stop()
			}
		}
	}
}

// takeOver writes this holder's value over revision rev of another's.
func (l *Lease) takeOver(ctx context.Context, rev uint64) (Term, error) {
	sent := time.Now()
	nrev, err := l.kv.Update(ctx, l.key, l.value(sent.UTC()), rev)
	if err != nil {
		return Term{}, err
	}
	t := Term{Revision: nrev, sent: sent}
	l.hold(t)
	l.logger.Info("lease taken over from a holder that stopped renewing it", "lease", l.key, "after", l.ttl)
	return t, nil
}

// TryAcquire takes the lease if it is free (or left by this holder's
// name), and reports whether it did.
func (l *Lease) TryAcquire(ctx context.Context) (Term, bool, error) {
	t, _, err := l.try(ctx)
	switch {
	case err == nil:
		return t, true, nil
	case errors.Is(err, jetstream.ErrKeyExists) || IsConflict(err):
		return Term{}, false, nil
	}
	return Term{}, false, fmt.Errorf("lease %s: %w", l.key, unavailable(ctx, l.nc, err))
}

// try takes the lease once; if another holds it, it returns the revision
// of that holder's value as well (0 if it could not read it).
func (l *Lease) try(ctx context.Context) (Term, uint64, error) {
	value := l.value(time.Now().UTC())
	sent := time.Now()
	rev, err := l.kv.Create(ctx, l.key, value)
	var other uint64
	if errors.Is(err, jetstream.ErrKeyExists) {
		if e, gerr := l.kv.Get(ctx, l.key); gerr == nil {
			var v LeaseValue
			if json.Unmarshal(e.Value(), &v) == nil && v.Holder == l.holder {
				sent = time.Now()
				rev, err = l.kv.Update(ctx, l.key, value, e.Revision())
			} else {
				other = e.Revision()
			}
		}
	}
	if err != nil {
		return Term{}, other, err
	}
	t := Term{Revision: rev, sent: sent}
	l.hold(t)
	return t, 0, nil
}

// Keep renews the lease several times a TTL. It returns ErrLeaseLost as
// soon as another holder took it or no renewal has succeeded for two
// thirds of a TTL; when ctx ends it releases the lease, so that another
// holder takes it over at once, and returns nil.
func (l *Lease) Keep(ctx context.Context, t Term) error {
	since := time.Now().UTC()
	grace := l.grace()
	tick := time.NewTicker(l.ttl / 6)
	defer tick.Stop()
	for {
		deadline := l.hold(t)
		lapsed := fmt.Errorf("%w: %s: no renewal succeeded for %s", ErrLeaseLost, l.key, grace)
		if !time.Now().Before(deadline) {
			// Checked first: select would pick a ready tick as often.
			return lapsed
		}
		expired := time.NewTimer(time.Until(deadline))
		select {
		case <-ctx.Done():
			expired.Stop()
			l.held.Store(nil)
			if err := l.release(context.WithoutCancel(ctx)); err != nil {
				l.logger.Warn("lease not released; it expires by itself", "lease", l.key, "err", err)
			}
			return nil
		case <-expired.C:
			return lapsed
		case <-tick.C:
			expired.Stop()
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		sent := time.Now()
		rev, err := l.kv.Update(rctx, l.key, l.value(since), t.Revision)
		cancel()
		switch {
		case err == nil:
			t = Term{Revision: rev, sent: sent}
		case IsConflict(err) || errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
			return fmt.Errorf("%w: %s: another holder took it: %w", ErrLeaseLost, l.key, err)
		case ctx.Err() == nil && time.Now().Before(deadline):
			l.logger.Warn("lease renewal failed; trying again", "lease", l.key, "err", err)
		}
	}
}

// release deletes the lease if this holder still has it. It reads the
// revision first: a renewal cut off by the end of Keep may have been
// stored without its answer arriving, or land between the read and the
// delete, which then reads again.
func (l *Lease) release(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.ttl/3)
	defer cancel()
	var err error
	for range 3 {
		var e jetstream.KeyValueEntry
		e, err = l.kv.Get(ctx, l.key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var v LeaseValue
		if json.Unmarshal(e.Value(), &v) != nil || v.Holder != l.holder {
			return nil
		}
		if err = l.kv.Delete(ctx, l.key, jetstream.LastRevision(e.Revision())); err == nil || !IsConflict(err) {
			return err
		}
	}
	return err
}
