package livesync

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zdm-io/zdm/dataplane/capture"
)

// A write whose outcome zdm never saw is repaired where the journal has
// it, and kept to be repaired again at the switch (repairagain.go): the
// source may apply it after the first repair read its keys. Repaired
// again while writes are held, it cost the pause a round of strong reads
// on each side, most of the pause after a zdmd was killed.
//
// The source applies a write it received within moments, or not at all;
// settleAfter is how long zdm allows it, past the write's journal time.
// Once a kept write is that old, and every entry its collection's applier
// has still to apply was journaled after that, a repair made between two
// of that applier's entries reads the source as a repair at the hold
// would: the write has landed or never will, and what the applier applies
// after the repair is newer than it. So the switch, before it holds
// writes, waits (at most settleAfter) for the kept writes to be that old
// and repairs them then, while writes flow; only what it could not
// settle so is repaired again at the hold, as before.
const settleAfter = 5 * time.Second

// settleLock bounds the wait for a collection's applier to be between
// two entries, having applied what was journaled before its kept writes
// were settleAfter old; one that takes longer (a target refusing writes,
// a long backlog) leaves them to the hold.
const settleLock = 2 * time.Second

// SettleRepairs repairs again, while writes still flow, the kept repairs
// old enough (see settleAfter), once the youngest is, and returns how
// many it settled. A repair it cannot settle is left for the hold.
func (a *Applier) SettleRepairs(ctx context.Context) (int, error) {
	kept, _, err := a.KeptRepairs(ctx)
	if err != nil || len(kept) == 0 {
		return 0, err
	}
	var youngest time.Time
	byColl := map[[2]string][]keptRepair{}
	for _, k := range kept {
		if k.entry.At.After(youngest) {
			youngest = k.entry.At
		}
		c := [2]string{k.entry.Database, k.entry.Collection}
		byColl[c] = append(byColl[c], k)
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(min(time.Until(youngest.Add(settleAfter)), settleAfter)):
	}
	var mu sync.Mutex
	settled := 0
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(repairAgainParallel)
	for c, ks := range byColl {
		g.Go(func() error {
			n, err := a.settleCollection(gctx, c[0], c[1], ks)
			if err != nil {
				return fmt.Errorf("settle the repairs of %s/%s: %w", c[0], c[1], err)
			}
			mu.Lock()
			settled += n
			mu.Unlock()
			return nil
		})
	}
	err = g.Wait()
	a.logger.Info("writes without a known outcome repaired again before the switch's hold", "writes", settled,
		"left_for_the_hold", len(kept)-settled, "collections", len(byColl))
	return settled, err
}

// settleCollection repairs again, between two entries of the
// collection's applier, the kept repairs that are settled by then. It
// gives the applier up to settleLock to apply what was journaled before
// they are (a busy applier is a moment behind), and settles what it can.
func (a *Applier) settleCollection(ctx context.Context, db, coll string, kept []keptRepair) (int, error) {
	subject := capture.CollectionSubject(a.id, db, coll)
	a.mu.Lock()
	w := a.workers[subject]
	a.mu.Unlock()
	if w == nil {
		return 0, nil
	}
	deadline := time.Now().Add(settleLock)
	for {
		if !lockWithin(ctx, &w.applying, time.Until(deadline)) {
			return 0, ctx.Err()
		}
		due, err := a.settledNow(ctx, subject, kept)
		if err != nil || (len(due) < len(kept) && time.Now().Before(deadline)) {
			w.applying.Unlock()
			if err != nil {
				return 0, err
			}
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		defer w.applying.Unlock()
		if len(due) == 0 {
			return 0, nil
		}
		if err := a.repairCollectionAgain(ctx, db, coll, due); err != nil {
			return 0, err
		}
		a.mu.Lock()
		for _, k := range due {
			a.settled[k.seq] = [2]string{db, coll}
		}
		a.mu.Unlock()
		return len(due), nil
	}
}

// settledNow returns the kept repairs of subject's collection that are
// settled now: old enough, and older than every entry its applier has
// still to apply. The caller holds the applier between two entries.
func (a *Applier) settledNow(ctx context.Context, subject string, kept []keptRepair) ([]keptRepair, error) {
	pending, err := a.oldestPending(ctx, subject)
	if err != nil {
		return nil, err
	}
	if !pending.IsZero() {
		// Both in zdmd's clock: the source's commit time less its lead.
		pending = pending.Add(-time.Duration(a.ahead.Load()))
	}
	now := time.Now()
	var due []keptRepair
	for _, k := range kept {
		landed := k.entry.At.Add(settleAfter)
		if !landed.After(now) && (pending.IsZero() || !pending.Before(landed)) {
			due = append(due, k)
		}
	}
	return due, nil
}

func (a *Applier) isSettled(seq uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.settled[seq]
	return ok
}

// settledColls adds to colls the collections of the settled repairs: the
// check while writes are held reads them, whatever it found before, so
// that a write the source applied later than allowed is found there.
func (a *Applier) settledColls(colls map[[2]string]bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.settled {
		colls[c] = true
	}
}

// lockWithin takes mu, waiting at most d.
func lockWithin(ctx context.Context, mu *sync.Mutex, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !mu.TryLock() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}
