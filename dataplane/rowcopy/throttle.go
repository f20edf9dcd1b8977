package rowcopy

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// throttle bounds the rows per second a copy reads from the source: a
// reader pays for the rows of each page it read before it reads the
// next, so the source's query nodes serve no more than the limit, whatever
// the number of readers. Without a limit it lets everything through.
type throttle struct {
	lim *rate.Limiter

	mu      sync.Mutex
	changed chan struct{} // closed, and replaced, when the limit changes
}

// minLimitedPage is the smallest page a limited copy reads: smaller
// pages cost the source more per row than the limit saves.
const minLimitedPage = 100

func newThrottle(rowsPerSecond int64) *throttle {
	t := &throttle{lim: rate.NewLimiter(rate.Inf, 0), changed: make(chan struct{})}
	t.set(rowsPerSecond)
	return t
}

// set changes the limit (0: none); readers waiting follow it at once.
func (t *throttle) set(rowsPerSecond int64) {
	want := rate.Inf
	if rowsPerSecond > 0 {
		want = rate.Limit(rowsPerSecond)
	}
	if t.lim.Limit() == want {
		return
	}
	if rowsPerSecond > 0 {
		// A second's worth at most at once, so that the rate over any
		// window of a few seconds stays near the limit.
		t.lim.SetBurst(int(max(rowsPerSecond, minLimitedPage)))
	}
	t.lim.SetLimit(want)
	t.mu.Lock()
	close(t.changed)
	t.changed = make(chan struct{})
	t.mu.Unlock()
}

// changes is closed at the next change of the limit.
func (t *throttle) changes() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// limit is the rows per second allowed, 0 for none.
func (t *throttle) limit() int64 {
	if l := t.lim.Limit(); l != rate.Inf {
		return int64(l)
	}
	return 0
}

// pageRows is the rows of a page under the limit: each of readers reads
// its share of a second's worth at most, so that the readers' first pages,
// read before any has paid, are a second's worth in all.
func (t *throttle) pageRows(rows, readers int) int {
	if l := t.limit(); l > 0 {
		return min(rows, int(max(l/int64(max(readers, 1)), minLimitedPage)))
	}
	return rows
}

// wait takes n rows from the limit, waiting as long as it says; a change
// of the limit while it waits takes effect at once.
func (t *throttle) wait(ctx context.Context, n int) error {
	for n > 0 {
		if t.lim.Limit() == rate.Inf {
			return nil
		}
		changed := t.changes()
		k := min(n, max(t.lim.Burst(), 1))
		r := t.lim.ReserveN(time.Now(), k)
		if !r.OK() { // the burst shrank meanwhile
			continue
		}
		d := r.Delay()
		if d > 0 {
			timer := time.NewTimer(d)
			select {
			case <-timer.C:
			case <-changed:
				timer.Stop()
				r.Cancel()
				continue
			case <-ctx.Done():
				timer.Stop()
				r.Cancel()
				return ctx.Err()
			}
		}
		n -= k
	}
	return nil
}

// follow sets the limit from read every second until ctx ends, so an
// operator's change reaches a copy that is running.
func (t *throttle) follow(ctx context.Context, read func(context.Context) (int64, error)) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if v, err := read(ctx); err == nil {
			t.set(v)
		}
	}
}
