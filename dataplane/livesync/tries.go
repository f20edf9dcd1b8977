package livesync

import (
	"cmp"
	"time"

	"github.com/zdm-io/zdm/retry"
)

// DefaultApplyRetry retries a write on the target 100 ms after its first
// failure, doubling up to 5 s, until it applies.
func DefaultApplyRetry() retry.Policy {
	return retry.Policy{First: 100 * time.Millisecond, Max: 5 * time.Second}
}

// Retry sets how an entry that does not apply is tried again; it is tried
// until it applies, whatever the policy's attempts.
func (a *Applier) Retry(p retry.Policy) *Applier {
	a.retry = p.Or(DefaultApplyRetry())
	a.retry.Attempts = 0
	return a
}

// DefaultStuckAfter is how long a journaled write may keep failing on
// the target before its migration fails: long enough for a target that
// restarts, short enough that a write the target refuses for good (a
// schema it will not take) is not retried for the rest of the sync.
const DefaultStuckAfter = 2 * time.Minute

// StuckAfter sets how long an entry fails before it is reported stuck (0:
// DefaultStuckAfter).
func (a *Applier) StuckAfter(d time.Duration) *Applier {
	a.stuckAfter = cmp.Or(d, DefaultStuckAfter)
	return a
}
