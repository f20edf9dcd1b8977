package livesync

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zdm-io/zdm/dataplane/capture"
)

// Lag is now minus the commit time of the oldest journaled write the
// source committed and the target lacks, over every subject (0 when
// nothing is pending). A write still waiting for the source's answer is
// not counted until it has it.
func (a *Applier) Lag(ctx context.Context, now time.Time) (float64, error) {
	subjects, err := a.journal.Subjects(ctx, capture.JournalPrefix(a.id)+">")
	if err != nil {
		return 0, err
	}
	var mu sync.Mutex
	var oldest time.Time
	err = eachSubject(ctx, subjects, func(ctx context.Context, subj string) (bool, error) {
		t, err := a.oldestPending(ctx, subj)
		if err != nil {
			return false, err
		}
		mu.Lock()
		defer mu.Unlock()
		if !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	if oldest.IsZero() {
		return 0, nil
	}
	// Both in zdmd's clock: the source's commit time less its lead.
	oldest = oldest.Add(-time.Duration(a.ahead.Load()))
	if !now.After(oldest) {
		return 0, nil
	}
	return now.Sub(oldest).Seconds(), nil
}

// eachSubject runs fn for every subject, subjectsParallel at a time, until
// one fails or says there is no need to look further. The lag, sampled
// every second, and the switch's drain, polled while writes are held,
// look at every collection written: one after another, a thousand would
// cost a thousand round trips to the journal each time.
func eachSubject(ctx context.Context, subjects map[string]uint64, fn func(ctx context.Context, subj string) (more bool, err error)) error {
	var enough atomic.Bool
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(subjectsParallel)
	for subj := range subjects {
		g.Go(func() error {
			if enough.Load() {
				return nil
			}
			more, err := fn(gctx, subj)
			if !more {
				enough.Store(true)
			}
			return err
		})
	}
	return g.Wait()
}

// subjectsParallel bounds the subjects eachSubject looks at at once.
const subjectsParallel = 16

// oldestPending is the commit time of the oldest entry of subject the
// source committed and the target lacks (zero: none).
func (a *Applier) oldestPending(ctx context.Context, subj string) (time.Time, error) {
	a.mu.Lock()
	w, ok := a.workers[subj]
	a.mu.Unlock()
	if !ok {
		return a.nextCommit(ctx, subj, a.position(ctx, subj))
	}
	w.mu.Lock()
	// What the reader took and did not apply is in oldest; what it did
	// not take yet is in the journal.
	t, read := w.oldest, w.read
	w.mu.Unlock()
	if t.IsZero() {
		return a.nextCommit(ctx, subj, read)
	}
	return t, nil
}

func (a *Applier) nextCommit(ctx context.Context, subject string, applied uint64) (time.Time, error) {
	_, data, ok, err := a.nextHead(ctx, subject, applied+1)
	if err != nil || !ok {
		return time.Time{}, err
	}
	e, err := capture.UnmarshalEntry(data)
	if err != nil {
		// A header longer than the head: read it whole.
		if _, data, ok, err = a.journal.Next(ctx, subject, applied+1); err != nil || !ok {
			return time.Time{}, err
		}
		if e, err = capture.UnmarshalEntry(data); err != nil {
			return time.Time{}, err
		}
	}
	a.sawEntry(e)
	return e.CommitTime(), nil
}

// Drained reports whether every entry up to fence is applied.
func (a *Applier) Drained(ctx context.Context, fence uint64) (bool, error) {
	subjects, err := a.journal.Subjects(ctx, capture.JournalPrefix(a.id)+">")
	if err != nil {
		return false, err
	}
	var behind atomic.Bool
	err = eachSubject(ctx, subjects, func(ctx context.Context, subj string) (bool, error) {
		drained, err := a.subjectDrained(ctx, subj, fence)
		if !drained {
			behind.Store(true)
		}
		return drained, err
	})
	if err != nil {
		return false, err
	}
	return !behind.Load(), nil
}

func (a *Applier) subjectDrained(ctx context.Context, subj string, fence uint64) (bool, error) {
	a.mu.Lock()
	w, ok := a.workers[subj]
	a.mu.Unlock()
	var applied, read uint64
	if ok {
		// The worker started from the stored position and stores its own.
		w.mu.Lock()
		applied, read = w.applied, w.read
		w.mu.Unlock()
	} else {
		applied = a.position(ctx, subj)
	}
	if applied < read && read <= fence {
		// The reader holds an entry up to the fence it has not applied:
		// no need to read the journal, whose next entry may be a write of
		// tens of megabytes, at every poll.
		return false, nil
	}
	seq, _, found, err := a.nextHead(ctx, subj, applied+1)
	if err != nil {
		return false, err
	}
	return !found || seq > fence, nil
}

// headReader is a journal that reads an entry's head without its parts
// (eventstore's).
type headReader interface {
	NextHead(ctx context.Context, subject string, seq uint64) (uint64, []byte, bool, error)
}

// nextHead is the journal's Next, without the parts of an entry in parts
// where the journal can: the lag and the drain poll it, and need only the
// entry's header or its sequence.
func (a *Applier) nextHead(ctx context.Context, subject string, seq uint64) (uint64, []byte, bool, error) {
	if h, ok := a.journal.(headReader); ok {
		return h.NextHead(ctx, subject, seq)
	}
	return a.journal.Next(ctx, subject, seq)
}

// Touched names the collections with an entry after seq that the applier
// has applied, each with whether one of those entries changed its
// structure (DDL, or a repair), and reports whether an entry of another
// kind (a database's DDL) was: the switch re-checks only what changed
// since its first check.
func (a *Applier) Touched(after uint64) (colls map[[2]string]bool, other bool) {
	colls = map[[2]string]bool{}
	a.mu.Lock()
	defer a.mu.Unlock()
	for subj, w := range a.workers {
		w.mu.Lock()
		applied, ddl := w.applied, w.ddl
		w.mu.Unlock()
		if applied <= after {
			continue
		}
		switch db, coll, kind := capture.SubjectNames(a.id, subj); kind {
		case "collection":
			colls[[2]string{db, coll}] = colls[[2]string{db, coll}] || ddl > after
		case "heartbeat":
		default:
			other = true
		}
	}
	return colls, other
}
