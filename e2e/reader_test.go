package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
)

// reader is a client that reads through an endpoint on a connection of
// its own, as an application's searches do beside its writes: a count of
// a collection every 50 ms, each within five seconds.
type reader struct {
	mu               sync.Mutex
	answered, failed int
	lastErr          string
	cancel           context.CancelFunc
	done             chan struct{}
}

func startReader(t *testing.T, endpoint, db, coll string) *reader {
	c := milvustest.Dial(t, endpoint)
	ctx, cancel := context.WithCancel(context.Background())
	r := &reader{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := c.Query(qctx, db, coll, "", []string{"count(*)"}, nil, 0)
			qcancel()
			r.mu.Lock()
			switch {
			case err == nil:
				r.answered++
			case ctx.Err() == nil:
				r.failed++
				r.lastErr = err.Error()
			}
			r.mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	t.Cleanup(r.stop)
	return r
}

func (r *reader) stop() {
	r.cancel()
	<-r.done
}

func (r *reader) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := fmt.Sprintf("%d answered, %d failed", r.answered, r.failed)
	if r.failed > 0 {
		s += " (last: " + r.lastErr + ")"
	}
	return s
}
