package livesync

import (
	"context"
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
// the pause fifty calls. They are the rows the source removed between the
// switch's sweep and that check, deleted as the sweep deletes (removeGone,
// or a sweep of the collection again where there were too many to list),
// so a write of one of them applied after the delete stands. The
// collection is then read again while writes are held, not taken from
// pre; what this leaves (an applier busy past settleLock, a failed
// delete) is deleted in the hold, as before.
func (s *Syncer) removeExpiredEarly(ctx context.Context, m *domain.Migration, r *syncRun, pre *verify.Report) {
	if pre == nil {
		return
	}
	for i := range pre.Collections {
		c := &pre.Collections[i]
		listed := c.ExpiredOnSource > 0 && len(c.OnlyOnTarget) == c.ExpiredOnSource
		tooMany := c.Expires && c.Extra > len(c.OnlyOnTarget)
		if !listed && !tooMany {
			continue
		}
		col, err := r.source.Structure(ctx, c.Database, c.Collection)
		switch {
		case err != nil:
		case tooMany:
			c.ExpiredRemovedEarly, _, err = s.sweepCollection(ctx, r, col)
		default:
			c.ExpiredRemovedEarly, _, err = s.removeGone(ctx, r, col, c.OnlyOnTarget)
		}
		if n := c.ExpiredRemovedEarly; n > 0 {
			s.logger.Info("rows the source removed after their time to live deleted from the target before the switch's hold",
				"migration", m.ID, "collection", col.Key(), "rows", n)
		}
		if err != nil && ctx.Err() == nil {
			s.logger.Warn("rows the source removed after their time to live are left for the switch's hold",
				"migration", m.ID, "collection", c.Database+"/"+c.Collection, "err", err)
		}
	}
}

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
