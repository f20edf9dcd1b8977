package e2e

import (
	"context"
	mathrand "math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/verify"
	st "github.com/zdm-io/zdm/service/servicetest"
)

// sameKeys is the collection both clients write, and how many keys they
// share.
const (
	sameKeysCollection = "same_c0"
	sameKeyCount       = 40
)

// keyWriter upserts and deletes the same few keys as fast as its
// endpoint answers, keeping when each acknowledged write and each failure
// came.
type keyWriter struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	acked  []time.Time
	failed []time.Time
	last   error
}

func startKeyWriter(t *testing.T, endpoint string, id int64) *keyWriter {
	c := milvustest.Dial(t, endpoint)
	col, err := c.Structure(context.Background(), "default", sameKeysCollection)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &keyWriter{cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	for worker := range 2 {
		wg.Go(func() {
			r := mathrand.New(mathrand.NewPCG(uint64(time.Now().UnixNano()), uint64(id*10+int64(worker))))
			gen := milvus.RowGen{Schema: col.Schema, Rand: r}
			for n := int64(1); ctx.Err() == nil; n++ {
				keys := milvus.Keys{}
				for _, k := range r.Perm(sameKeyCount)[:5] {
					keys.Ints = append(keys.Ints, int64(k))
				}
				wctx, stop := context.WithTimeout(ctx, 15*time.Second)
				var err error
				if r.IntN(10) == 0 {
					_, err = c.Delete(wctx, "default", sameKeysCollection, "", keys.InExpr(col.PrimaryField().GetName()))
				} else {
					// The version says which client wrote the row, and when.
					cols := gen.Columns(keys.Len(), keys, func(int) int64 { return id<<40 | int64(worker)<<32 | n })
					_, err = c.Upsert(wctx, "default", sameKeysCollection, "", cols, keys.Len())
				}
				stop()
				w.mu.Lock()
				if err == nil {
					w.acked = append(w.acked, time.Now())
				} else if ctx.Err() == nil {
					w.failed, w.last = append(w.failed, time.Now()), err
				}
				w.mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond) // refused: its instance restarts
				}
			}
		})
	}
	go func() { wg.Wait(); close(w.done) }()
	t.Cleanup(func() { w.cancel(); <-w.done })
	return w
}

func (w *keyWriter) stop() { w.cancel(); <-w.done }

// longestGap is the longest time between two acknowledged writes after at.
func (w *keyWriter) longestGap(at time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var gap time.Duration
	for i := 1; i < len(w.acked); i++ {
		if w.acked[i].After(at) {
			gap = max(gap, w.acked[i].Sub(w.acked[i-1]))
		}
	}
	return gap
}

// TestTwoClientsWriteTheSameKeysThroughTwoInstances runs two zdmd on a
// three-node NATS cluster, and two clients that write the same 40 keys
// for the whole sync, each connected straight to a different instance:
// one instance drives (captures), the other relays. The instance that
// drives is killed while they write. Once they stop, the target holds
// what the source holds, row for row: every write reached the target in
// the order the source applied it.
func TestTwoClientsWriteTheSameKeysThroughTwoInstances(t *testing.T) {
	e := newEnv(t, "")
	seed(t, e.bed.Source, datatools.Shape{Databases: 1, DefaultDB: true, Collections: 1, Rows: 200, Dim: 8, PKType: "int64",
		Index: "FLAT", Load: true, Prefix: "same_"})
	f, _, endpoints := startHAFleet(t, e, 2)
	f.Takeover(-1, 15*time.Second)
	src, _ := e.register(t, f.Procs[0], map[string]any{"proxy_listen": haProxyListen})
	for _, ep := range endpoints {
		if err := milvus.WaitAnswer(context.Background(), ep, 30*time.Second); err != nil {
			t.Fatalf("no endpoint at %s: %v", ep, err)
		}
	}
	id := start(t, f.Procs[1], src, nil)
	f.WaitFor(id, waitTimeout(), func(m st.Migration) bool { return m.State == "syncing" && m.LagSeconds != nil })

	driving := f.Driving()
	writers := []*keyWriter{startKeyWriter(t, endpoints[0], 1), startKeyWriter(t, endpoints[1], 2)}
	time.Sleep(5 * time.Second)
	killed := time.Now()
	f.KillDriving("sync")
	time.Sleep(5 * time.Second)
	for _, w := range writers {
		w.stop()
	}
	for i, w := range writers {
		role := "relayed by the instance that did not drive"
		if i == driving {
			role = "captured by the instance that drove, killed"
		}
		t.Logf("client %d (%s): %d writes acknowledged, %d failed (last: %v); longest gap between acknowledged writes after the kill %.2fs",
			i+1, role, len(w.acked), len(w.failed), w.last, w.longestGap(killed).Seconds())
		if len(w.acked) == 0 {
			t.Fatalf("client %d had no write acknowledged", i+1)
		}
	}
	f.WaitFor(id, time.Minute, func(m st.Migration) bool { return m.LagSeconds != nil && *m.LagSeconds < 0.5 })
	verifyUntilEqual(t, e, verify.Options{SampleEvery: 1})
}
