package integration_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
)

// answer is what a client was told of one write, and when it asked.
type answer struct {
	keys      []int64
	asked, at time.Time
	err       error
}

// writers upsert batches of fresh keys through c from several goroutines
// until stop is called; stop returns every answer.
func writers(c *milvus.Conn, shape datatools.Shape, db, coll string, n, rows int, pause time.Duration) (answers func() []answer, stop func() []answer) {
	var (
		mu   sync.Mutex
		got  []answer
		wg   sync.WaitGroup
		done = make(chan struct{})
	)
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gen := milvus.RowGen{Schema: shape.Schema(coll), Rand: rand.New(rand.NewPCG(uint64(w), 7))}
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				keys := make([]int64, rows)
				for r := range keys {
					keys[r] = int64(w)<<32 | int64(i*rows+r)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				asked := time.Now()
				_, err := c.Upsert(ctx, db, coll, "", gen.Columns(rows, milvus.Keys{Ints: keys}, func(int) int64 { return 1 }), rows)
				cancel()
				mu.Lock()
				got = append(got, answer{keys: keys, asked: asked, at: time.Now(), err: err})
				mu.Unlock()
				time.Sleep(pause)
			}
		}()
	}
	answers = func() []answer {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
	return answers, func() []answer { close(done); wg.Wait(); return answers() }
}

// since keeps the answers to writes asked after t0 that keep (ok,
// refused, or nil for all) accepts.
func since(as []answer, t0 time.Time, keep func(answer) bool) []answer {
	var out []answer
	for _, a := range as {
		if a.asked.After(t0) && (keep == nil || keep(a)) {
			out = append(out, a)
		}
	}
	return out
}

func ok(a answer) bool { return a.err == nil }

func refused(a answer) bool { return a.err != nil }

// acknowledged returns the keys of the writes the client was told succeeded.
func acknowledged(as []answer) []int64 {
	var keys []int64
	for _, a := range as {
		if a.err == nil {
			keys = append(keys, a.keys...)
		}
	}
	return keys
}

// waitFor polls cond until it holds, or fails the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within a minute: %s", what)
		}
	}
}

// holdsEvery says how many of keys c holds, in chunks the query takes.
func holdsEvery(t *testing.T, c *milvus.Conn, db, coll string, keys []int64) int64 {
	t.Helper()
	var n int64
	for chunk := range slices.Chunk(keys, 1000) {
		got, err := c.CountWhere(context.Background(), db, coll, milvus.Keys{Ints: chunk}.InExpr("id"))
		if err != nil {
			t.Fatal(err)
		}
		n += got
	}
	return n
}

// settled checks the outcome an operator is promised after a journal
// outage: the migration goes on, every acknowledged write is on the
// target, and the target holds what the source holds. A write is
// journaled before it is sent, so no write reaches the source while the
// journal is away.
func (b *syncBed) settled(t *testing.T, f storedFailures, db, coll string, all []answer) {
	t.Helper()
	b.drain(t)
	acked := acknowledged(all)
	if got := holdsEvery(t, b.dst, db, coll, acked); got != int64(len(acked)) {
		t.Fatalf("the target holds %d of the %d acknowledged rows", got, len(acked))
	}
	var tried []int64
	for _, a := range all {
		tried = append(tried, a.keys...)
	}
	onSource, onTarget := holdsEvery(t, b.src, db, coll, tried), holdsEvery(t, b.dst, db, coll, tried)
	switch reason := f.reason(t, b.id); {
	case reason != "":
		t.Fatalf("the migration failed for %s", reason)
	case onSource != onTarget:
		t.Fatalf("the migration goes on, but the source holds %d of the written rows and the target %d", onSource, onTarget)
	}
	t.Logf("%d writes: %d rows acknowledged, %d on the source, %d on the target", len(all), len(acked), onSource, onTarget)
}
