package livesync

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/verify"
	"github.com/zdm-io/zdm/domain"
)

// removeExpiredEarly deletes from the target, while writes still flow,
// the rows that pre, the check before the hold, found the target alone
// holds in a collection whose rows expire (verify.RemoveExpired): deleted
// while writes are held, 2,000 keys a call, 100,000 such rows would cost
// the pause fifty calls. Each collection's rows are deleted while its
// applier is between two entries, and only if none of them was written
// through the proxy since fence0: a write applied after the delete is
// newer than it and stands. The collection is then read again while
// writes are held, not taken from pre. One this cannot do (no applier
// yet, an applier busy past settleLock, a key written since, a failed
// delete) keeps its rows for the hold, as before.
func (s *Syncer) removeExpiredEarly(ctx context.Context, m *domain.Migration, r *syncRun, pre *verify.Report, fence0 uint64) {
	if pre == nil {
		return
	}
	written := r.applier.WrittenAfter(fence0)
	for i := range pre.Collections {
		c := &pre.Collections[i]
		if c.Expires && c.Extra > len(c.OnlyOnTarget) {
			// More rows on the target alone than the walk lists: the
			// source's compaction removed many since the switch's sweep.
			// Swept again, the collection is read again while held.
			if col, err := r.source.Structure(ctx, c.Database, c.Collection); err == nil {
				c.ExpiredRemovedEarly, _, _ = s.sweepCollection(ctx, r, col)
			}
			continue
		}
		if c.ExpiredOnSource == 0 || len(c.OnlyOnTarget) != c.ExpiredOnSource {
			continue
		}
		done, err := r.applier.betweenEntries(ctx, c.Database, c.Collection, settleLock, func() error {
			keys, ok := written(c.Database, c.Collection)
			if !ok || verify.AnyWritten(c.OnlyOnTarget, keys) {
				return errWrittenSince
			}
			return verify.RemoveRows(ctx, r.target, c.Database, c.Collection, c.OnlyOnTarget)
		})
		switch {
		case err == nil && done:
			c.ExpiredRemovedEarly = c.ExpiredOnSource
			s.logger.Info("rows the source removed after their time to live deleted from the target before the switch's hold",
				"migration", m.ID, "collection", c.Database+"/"+c.Collection, "rows", c.ExpiredOnSource)
		case err != nil && !errors.Is(err, errWrittenSince) && ctx.Err() == nil:
			s.logger.Warn("rows the source removed after their time to live are left for the switch's hold",
				"migration", m.ID, "collection", c.Database+"/"+c.Collection, "err", err)
		}
	}
}

// errWrittenSince: a key to delete was written through the proxy since
// the check before the hold.
var errWrittenSince = errors.New("written since the check before the hold")

// keepEarlyRemovals adds to rep, the check made while writes were held,
// how many rows of each collection were deleted before the hold: by the
// switch's sweep (swept) and by removeExpiredEarly (in pre).
func keepEarlyRemovals(rep, pre *verify.Report, swept map[[2]string]int) {
	if rep == nil {
		return
	}
	early := map[[2]string]int{}
	maps.Copy(early, swept)
	if pre != nil {
		for _, p := range pre.Collections {
			if p.ExpiredRemovedEarly > 0 {
				early[[2]string{p.Database, p.Collection}] += p.ExpiredRemovedEarly
			}
		}
	}
	if len(early) == 0 {
		return
	}
	for i := range rep.Collections {
		c := &rep.Collections[i]
		c.ExpiredRemovedEarly += early[[2]string{c.Database, c.Collection}]
	}
}

// betweenEntries runs f while no entry of db/coll is applied: while its
// applier is between two entries, waiting at most within for it, or, for
// a collection with no applier yet, while none can start (the first
// entries it applies are then applied after f). It reports false, without
// running f, for an applier that was not between two entries in time.
func (a *Applier) betweenEntries(ctx context.Context, db, coll string, within time.Duration, f func() error) (bool, error) {
	subj := capture.CollectionSubject(a.id, db, coll)
	a.starting.Lock()
	a.mu.Lock()
	w := a.workers[subj]
	a.mu.Unlock()
	if w == nil {
		defer a.starting.Unlock()
		return true, f()
	}
	a.starting.Unlock()
	if !lockWithin(ctx, &w.applying, within) {
		return false, nil
	}
	defer w.applying.Unlock()
	return true, f()
}
