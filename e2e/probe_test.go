package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// probe dials an endpoint afresh every 50 ms and makes its first call
// (within 500 ms), as a client that has just lost its connection does, to
// tell how long the endpoint itself was away after a failure (refused, or
// holding calls until an instance drives again), apart from how long a
// client's reconnect backoff kept it waiting.
type probe struct {
	mu sync.Mutex
	// at: when each dial began; seen: when it ended.
	at, seen []time.Time
	ok       []bool
	cancel   context.CancelFunc
	done     chan struct{}
}

func startProbe(t *testing.T, addr string) *probe {
	ctx, cancel := context.WithCancel(context.Background())
	p := &probe{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for ctx.Err() == nil {
			dctx, dcancel := context.WithTimeout(ctx, 500*time.Millisecond)
			at := time.Now()
			c, err := milvus.Dial(dctx, milvus.Endpoint{Address: addr})
			dcancel()
			if err == nil {
				c.Close()
			}
			p.mu.Lock()
			p.at, p.seen, p.ok = append(p.at, at), append(p.seen, time.Now()), append(p.ok, err == nil)
			p.mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *probe) stop() {
	p.cancel()
	<-p.done
}

// away is how long after `from` the endpoint failed to answer: from the
// first failed dial to the next that succeeded (0 if none failed before
// the next failure moment `until`). A dial that failed only after `until`
// failed by that next failure, even if it began before it.
func (p *probe) away(from, until time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var down time.Time
	for i, at := range p.at {
		if at.Before(from) {
			continue
		}
		switch {
		case !p.ok[i] && down.IsZero():
			if !until.IsZero() && p.seen[i].After(until) {
				return 0
			}
			down = at
		case p.ok[i] && !down.IsZero():
			return at.Sub(down)
		}
	}
	if down.IsZero() {
		return 0
	}
	return time.Since(down)
}
