package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	st "github.com/zdm-io/zdm/service/servicetest"
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

// relayCounts reads, by index, each running instance's relayed calls a
// dying driver took (zdm_proxy_relay_lost_total): calls sent again, and
// writes failed.
func relayCounts(procs []*st.Proc) map[int][2]int {
	out := map[int][2]int{}
	for i, p := range procs {
		if c, ok := scrapeCounters(p, `zdm_proxy_relay_lost_total{outcome="resent"}`, `zdm_proxy_relay_lost_total{outcome="failed"}`); ok {
			out[i] = [2]int{c[0], c[1]}
		}
	}
	return out
}

// sentBack is how many relayed calls came back unsent from an instance
// that did not drive, as the running instances counted them.
func sentBack(procs []*st.Proc) int {
	n := 0
	for _, p := range procs {
		if c, ok := scrapeCounters(p, "zdm_proxy_relay_sent_back_total"); ok {
			n += c[0]
		}
	}
	return n
}

// scrapeCounters reads the values of the named series from a running
// instance's /metrics.
func scrapeCounters(p *st.Proc, series ...string) ([]int, bool) {
	if p == nil || p.Cmd.ProcessState != nil {
		return nil, false
	}
	body, err := p.Get("/metrics")
	if err != nil {
		return nil, false
	}
	c := make([]int, len(series))
	for _, line := range strings.Split(string(body), "\n") {
		for j, name := range series {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				n, _ := strconv.ParseFloat(v, 64)
				c[j] = int(n)
			}
		}
	}
	return c, true
}

// lostSince is what the instances counted between two readings; one
// restarted in between counts from nought again, and only what it
// counted since shows.
func lostSince(before, after map[int][2]int) (resent, failed int) {
	for i, a := range after {
		b := before[i]
		if a[0] < b[0] || a[1] < b[1] {
			b = [2]int{}
		}
		resent, failed = resent+a[0]-b[0], failed+a[1]-b[1]
	}
	return resent, failed
}
