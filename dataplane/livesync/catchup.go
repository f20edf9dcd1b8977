package livesync

import (
	"context"
	"time"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/verify"
	"github.com/zdm-io/zdm/domain"
)

// beforeHold readies a switch while writes still flow. The applier
// catches up with the journal as it is now, so that the hold covers only
// what came in since; an applier that trails (a slow target) does not
// lengthen the pause. A catch-up that does not end in time is left to the
// drain. Once caught up, every collection is checked; the hold re-checks
// only those written since fence0, so the pause does not grow with the
// number of collections. The rows that check found the source removed
// after their time to live are deleted from the target now where they
// can be (removeExpiredEarly). Then the applier catches up again with
// what came in during that check (catchUp).
//
// It returns that check (nil: the hold checks every collection), the
// collections it described, and fence0. Only a cancelled ctx is an error.
func (s *Syncer) beforeHold(ctx context.Context, m *domain.Migration, r *syncRun) (*verify.Report, *verify.Described, uint64, error) {
	var pre *verify.Report
	described := verify.NewDescribed()
	fence0, err := s.caughtUp(ctx, m, r.applier)
	if err == nil {
		// A collection whose counts it explains by walking the keys keeps
		// what the walk found: the check while writes are held then reads
		// only the keys it points to and those written since.
		if pre, err = verify.QuickCheckWith(ctx, r.source, r.target, verify.QuickOptions{Known: described, Keep: true}); err != nil {
			pre = nil
		}
	}
	if ctx.Err() != nil {
		return nil, nil, 0, ctx.Err()
	}
	if err != nil {
		s.logger.Warn("the check before the hold did not complete; the check while writes are held reads every collection",
			"migration", m.ID, "err", err)
	}
	s.removeExpiredEarly(ctx, m, r, pre)
	s.catchUp(ctx, m, r.applier)
	if ctx.Err() != nil {
		return nil, nil, 0, ctx.Err()
	}
	return pre, described, fence0, nil
}

// catchUpRounds bounds the catch-ups after the check before the hold; a
// round shorter than catchUpEnough ends them. A source written faster
// than the target takes the writes never catches up: the rest is drained
// while writes are held, as it was without these rounds.
const (
	catchUpRounds = 3
	catchUpEnough = 100 * time.Millisecond
)

// catchUp applies, while writes still flow, what was journaled during the
// check before the hold, then what was journaled meanwhile, until a round
// is short: the hold then drains what came in during the last round, not
// during the whole check. Under a loaded machine that check took a second
// or more, and its writes were drained while writes were held.
func (s *Syncer) catchUp(ctx context.Context, m *domain.Migration, a *Applier) {
	for range catchUpRounds {
		began := time.Now()
		if _, err := s.caughtUp(ctx, m, a); err != nil || time.Since(began) < catchUpEnough {
			return
		}
	}
}

// caughtUp applies the journal up to its newest entry as it is now, for
// up to a tenth of the drain timeout, and returns that entry's sequence.
func (s *Syncer) caughtUp(ctx context.Context, m *domain.Migration, a *Applier) (uint64, error) {
	fence, err := s.journal.LastSeq(ctx, capture.JournalPrefix(m.ID)+">")
	if err != nil {
		return 0, err
	}
	return fence, s.drainTo(ctx, a, fence, s.cfg.DrainTimeout/10)
}
