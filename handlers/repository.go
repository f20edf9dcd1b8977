package handlers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/retry"
)

// aggregate is what the repository folds: a migration or a cluster.
type aggregate[A any] interface {
	Apply(domain.Record) error
	Seq() uint64
	Clone() A
	Snapshot() ([]byte, error)
	Restore([]byte) (bool, error)
}

// Snapshots keeps the latest folded state of each aggregate, so that a
// load replays only the events after it.
type Snapshots interface {
	Put(ctx context.Context, key string, value []byte) error
	Get(ctx context.Context, key string) ([]byte, error)
}

// SnapshotEvery is how many events an aggregate takes between snapshots.
const SnapshotEvery = 500

// repository loads aggregates from the event log, keeps them cached, and
// runs one command at a time per aggregate in this process. Other
// processes are kept out by the log's optimistic concurrency. The cached
// aggregate is changed only under its lock; callers get clones.
type repository[A aggregate[A]] struct {
	log       EventLog
	snapshots Snapshots // nil: none are kept
	clock     Clock
	subject   func(id string) (string, error)
	fresh     func() A
	// storeRetry waits out a store that cannot answer for a moment (a
	// NATS node lost, its streams electing leaders).
	storeRetry retry.Policy

	mu    sync.Mutex
	cache map[string]A
	locks map[string]*idLock
	// unsnapped counts the events applied since each aggregate's last
	// snapshot.
	unsnapped map[string]int
}

func newRepository[A aggregate[A]](log EventLog, snapshots Snapshots, clock Clock, storeRetry retry.Policy, subject func(string) (string, error), fresh func() A) *repository[A] {
	return &repository[A]{log: log, snapshots: snapshots, clock: clock, storeRetry: storeRetry, subject: subject, fresh: fresh,
		cache: map[string]A{}, locks: map[string]*idLock{}, unsnapped: map[string]int{}}
}

// untilStored runs op again while the store is unavailable (see
// UntilStored), within the repository's store policy.
func (r *repository[A]) untilStored(ctx context.Context, op func() error) error {
	return UntilStored(ctx, r.storeRetry, op)
}

// UntilStored runs op again while the event store is unavailable, within
// policy: its tries, and no longer than its pauses add up to, since a try
// that finds no answer itself lasts seconds and the caller waits for all
// of it. Only an unavailable store is retried: every other answer is the
// caller's to handle.
func UntilStored(ctx context.Context, policy retry.Policy, op func() error) error {
	began := time.Now()
	return policy.Do(ctx, func(int) error {
		err := op()
		if err != nil && (!errors.Is(err, domain.ErrStoreUnavailable) || time.Since(began) > policy.Span()) {
			return retry.Stop(err)
		}
		return err
	})
}

// loadLog reads a subject's events after seq, waiting out an unavailable
// store.
func (r *repository[A]) loadLog(ctx context.Context, subj string, after uint64) (recs []domain.Record, last uint64, err error) {
	err = r.untilStored(ctx, func() error {
		recs, last, err = r.log.Load(ctx, subj, after)
		return err
	})
	return recs, last, err
}

// lock takes id's lock and returns its release. A lock lives while it is
// held or awaited: ids that name nothing (a client's typo, a fuzzer's
// guesses) would otherwise each leave one behind, for the life of the
// process.
func (r *repository[A]) lock(id string) func() {
	r.mu.Lock()
	l, ok := r.locks[id]
	if !ok {
		l = &idLock{}
		r.locks[id] = l
	}
	l.users++
	r.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		r.mu.Lock()
		if l.users--; l.users == 0 {
			delete(r.locks, id)
		}
		r.mu.Unlock()
	}
}

// idLock is one aggregate's lock and how many hold or await it.
type idLock struct {
	mu    sync.Mutex
	users int
}

// load returns the aggregate with every stored event applied; the caller
// holds its lock. An aggregate with no events is returned empty.
func (r *repository[A]) load(ctx context.Context, id string) (A, error) {
	subj, err := r.subject(id)
	if err != nil {
		var zero A
		return zero, err
	}
	r.mu.Lock()
	a, ok := r.cache[id]
	r.mu.Unlock()
	if !ok {
		a = r.restore(ctx, subj)
	}
	recs, last, err := r.loadLog(ctx, subj, a.Seq())
	if err != nil {
		var zero A
		return zero, fmt.Errorf("load %s: %w", subj, err)
	}
	if last < a.Seq() {
		// The snapshot is ahead of the log (a log restored from an older
		// copy): only the log counts.
		a = r.fresh()
		if recs, _, err = r.loadLog(ctx, subj, 0); err != nil {
			var zero A
			return zero, fmt.Errorf("load %s: %w", subj, err)
		}
	}
	for _, rec := range recs {
		if err := a.Apply(rec); err != nil {
			// The log holds an event the aggregate refuses: drop the
			// cache so nothing acts on a half-applied state.
			r.forget(id)
			var zero A
			return zero, fmt.Errorf("replay %s: %w", subj, err)
		}
	}
	if a.Seq() > 0 {
		r.mu.Lock()
		r.cache[id] = a
		r.mu.Unlock()
		r.snap(ctx, id, subj, a, len(recs))
	}
	return a, nil
}

// restore starts a load from the aggregate's snapshot, or from nothing
// when there is none it can use.
func (r *repository[A]) restore(ctx context.Context, subj string) A {
	if r.snapshots == nil {
		return r.fresh()
	}
	data, err := r.snapshots.Get(ctx, subj)
	if err != nil {
		return r.fresh()
	}
	a := r.fresh()
	if ok, err := a.Restore(data); !ok || err != nil {
		return r.fresh()
	}
	return a
}

// snap counts applied events and stores a snapshot every SnapshotEvery.
// A snapshot that cannot be stored costs only replay time later.
func (r *repository[A]) snap(ctx context.Context, id, subj string, a A, applied int) {
	if r.snapshots == nil || applied == 0 {
		return
	}
	r.mu.Lock()
	r.unsnapped[id] += applied
	due := r.unsnapped[id] >= SnapshotEvery
	if due {
		r.unsnapped[id] = 0
	}
	r.mu.Unlock()
	if !due {
		return
	}
	if data, err := a.Snapshot(); err == nil {
		_ = r.snapshots.Put(ctx, subj, data)
	}
}

func (r *repository[A]) forget(id string) {
	r.mu.Lock()
	delete(r.cache, id)
	r.mu.Unlock()
}

// Get returns the current aggregate (ErrNotFound if it has no events).
func (r *repository[A]) Get(ctx context.Context, id string) (A, error) {
	defer r.lock(id)()
	a, err := r.load(ctx, id)
	if err != nil {
		return a, err
	}
	if a.Seq() == 0 {
		return a, fmt.Errorf("%w: %s", domain.ErrNotFound, id)
	}
	return a.Clone(), nil
}

// Exec decides with the current state and appends the result. On a
// concurrent change it reloads and decides again. It returns the aggregate
// after the command; a decision with no events appends nothing.
func (r *repository[A]) Exec(ctx context.Context, id, commandID, actor string, decide func(A) ([]domain.Event, error)) (A, error) {
	defer r.lock(id)()
	var zero A
	for attempt := 0; attempt < 5; attempt++ {
		a, err := r.load(ctx, id)
		if err != nil {
			return zero, err
		}
		events, err := decide(a)
		if err != nil || len(events) == 0 {
			return a.Clone(), err
		}
		subj, _ := r.subject(id)
		b := domain.Batch{CommandID: commandID, Actor: actor, At: r.clock.Now(), Events: events}
		// A retried append after an unanswered one sends the same batch
		// with the same expected sequence: if the first was stored, the log
		// answers ErrAlreadyStored, never a second copy.
		var seq uint64
		err = r.untilStored(ctx, func() error {
			seq, err = r.log.Append(ctx, subj, a.Seq(), b)
			return err
		})
		if errors.Is(err, domain.ErrConflict) {
			continue
		}
		if errors.Is(err, domain.ErrAlreadyStored) {
			// An earlier try stored this command: the answer is the
			// aggregate with it, read from the log, not decided again
			// (a retried cancel would find the migration ended).
			r.forget(id)
			if a, err = r.load(ctx, id); err != nil {
				return zero, err
			}
			return a.Clone(), nil
		}
		if err != nil {
			return zero, err
		}
		for _, e := range events {
			if err := a.Apply(domain.Record{Seq: seq, At: b.At, Actor: actor, Event: e}); err != nil {
				r.forget(id)
				return zero, err
			}
		}
		r.mu.Lock()
		r.cache[id] = a
		r.mu.Unlock()
		r.snap(ctx, id, subj, a, len(events))
		return a.Clone(), nil
	}
	return zero, fmt.Errorf("%s: %w (gave up after 5 attempts)", id, domain.ErrConflict)
}
