package integration_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
)

// proxiedBed is a sync bed for migration id of shape, applying, with its
// proxy's address and the description of db/coll on the source.
func proxiedBed(t *testing.T, id string, shape datatools.Shape, db, coll string) (*syncBed, *milvus.Collection, string) {
	b := newSyncBed(t, id, shape, nil)
	col, err := b.src.DescribeCollection(context.Background(), db, coll)
	if err != nil {
		t.Fatal(err)
	}
	addr := b.proxy(t)
	b.apply(t)
	return b, col, addr
}

// Clients writing the same keys at the same time through the proxy: the
// source keeps, for each key, the write it committed last, and so must the
// target once the journal is applied, whatever order the proxy saw the
// answers in.
func TestConcurrentWritesOfTheSameKeysEndAsOnTheSource(t *testing.T) {
	ctx := context.Background()
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 20, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 2, Seed: 5, Prefix: "ord_"}
	const db, coll, id = "ord_db0", "ord_c0", "m-order"
	b, col, addr := proxiedBed(t, id, shape, db, coll)
	src, dst, journal := b.src, b.dst, b.journal

	// Every writer upserts the same ten keys, each time with a value of
	// its own in "n", and half of them delete two of the keys now and
	// then.
	keys := milvus.Keys{Ints: []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}
	var wg sync.WaitGroup
	until := time.Now().Add(4 * time.Second)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := milvus.Dial(ctx, milvus.Endpoint{Address: addr})
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			gen := milvus.RowGen{Schema: col.Schema, Rand: rand.New(rand.NewPCG(uint64(w), 1))}
			for i := 0; time.Now().Before(until); i++ {
				v := int64(w*1_000_000 + i)
				if w%2 == 1 && i%5 == 4 {
					if _, err := c.Delete(ctx, db, coll, "", fmt.Sprintf("id in [%d, %d]", i%10, (i+3)%10)); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				if _, err := c.Upsert(ctx, db, coll, "", gen.Columns(keys.Len(), keys, func(int) int64 { return v }), keys.Len()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()

	b.drain(t)
	// Every write here touches every key, so the journal must hold them in
	// the order the source committed them (deletes on Milvus 2.3 carry no
	// timestamp).
	last, writes := uint64(0), 0
	for i, e := range resolved(t, journal, capture.CollectionSubject(id, db, coll)) {
		if e.Timestamp != 0 && e.Timestamp < last {
			t.Fatalf("journal entry %d was committed at %d, before the entry ahead of it (%d)", i, e.Timestamp, last)
		}
		last = max(last, e.Timestamp)
		writes++
	}
	t.Logf("%d writes journaled", writes)
	want, got := valuesOf(t, src, db, coll, keys), valuesOf(t, dst, db, coll, keys)
	for _, k := range keys.Strings() {
		if want[k] != got[k] {
			t.Errorf("key %s: the source holds n=%d, the target n=%d", k, want[k], got[k])
		}
	}
}

// Writes and DDL through an alias are journaled under the collection's own
// name: the target gets the alias only after the copy, and a write of the
// same key through the alias and through the name must be ordered as one.
func TestWritesAndDDLThroughAnAliasAreAppliedToItsCollection(t *testing.T) {
	ctx := context.Background()
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 20, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Seed: 6, Prefix: "ali_", Aliases: true}
	bare := shape
	bare.Aliases = false
	const db, coll, id = "ali_db0", "ali_c0", "m-alias"
	b := newSyncBed(t, id, shape, &bare)
	col, err := b.src.DescribeCollection(ctx, db, coll)
	if err != nil {
		t.Fatal(err)
	}
	if len(col.Aliases) != 1 {
		t.Fatalf("seeded aliases: %v", col.Aliases)
	}
	alias := col.Aliases[0]
	c := milvustest.Dial(t, b.proxy(t))
	b.apply(t)

	gen := milvus.RowGen{Schema: col.Schema, Rand: rand.New(rand.NewPCG(6, 6))}
	added := milvus.Keys{Ints: []int64{1000, 1001, 1002}}
	if _, err := c.Insert(ctx, db, alias, "", gen.Columns(added.Len(), added, func(int) int64 { return 7 }), added.Len()); err != nil {
		t.Fatal(err)
	}
	three := milvus.Keys{Ints: []int64{3}}
	if _, err := c.Upsert(ctx, db, alias, "", gen.Columns(1, three, func(int) int64 { return 8 }), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, db, alias, "", "id in [4]"); err != nil {
		t.Fatal(err)
	}
	if err := c.CreatePartition(ctx, db, alias, "late"); err != nil {
		t.Fatal(err)
	}
	b.drain(t)

	subjects, err := b.journal.Subjects(ctx, capture.JournalPrefix(id)+">")
	if err != nil {
		t.Fatal(err)
	}
	want := capture.CollectionSubject(id, db, coll)
	if _, ok := subjects[want]; len(subjects) != 1 || !ok || len(resolved(t, b.journal, want)) != 4 {
		t.Fatalf("journal subjects %v, want the 3 writes and the DDL under %s", subjects, want)
	}
	if got, err := b.dst.DescribeCollection(ctx, db, coll); err != nil || !slices.Contains(got.Partitions, "late") {
		t.Fatalf("partitions on the target: %v %v", got.Partitions, err)
	}
	touched := milvus.Keys{Ints: []int64{3, 4, 1000, 1001, 1002}}
	rows := func(c *milvus.Conn) string { return fmt.Sprint(valuesOf(t, c, db, coll, touched)) }
	if s, d := rows(b.src), rows(b.dst); s != d || s != "map[1000:7 1001:7 1002:7 3:8]" {
		t.Fatalf("rows written through the alias: source %s, target %s", s, d)
	}
}

// Clients that give up on their writes at random moments, while others
// write the same keys: a write whose client hangs up may still be applied
// by the source, so the proxy sends it on and journals what the source
// answered. The target ends as the source, key for key.
func TestWritesWhoseClientsHangUpEndAsOnTheSource(t *testing.T) {
	ctx := context.Background()
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 20, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 2, Seed: 7, Prefix: "hup_"}
	const db, coll, id = "hup_db0", "hup_c0", "m-hangup"
	b, col, addr := proxiedBed(t, id, shape, db, coll)

	keys := milvus.Keys{Ints: []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	gaveUp := 0
	until := time.Now().Add(4 * time.Second)
	for w := range 6 {
		wg.Go(func() {
			c := milvustest.Dial(t, addr)
			r := rand.New(rand.NewPCG(uint64(w), 2))
			gen := milvus.RowGen{Schema: col.Schema, Rand: r}
			for i := 1; time.Now().Before(until); i++ {
				some := milvus.Keys{Ints: []int64{int64(r.IntN(10)), int64(r.IntN(10))}}
				if some.Ints[0] == some.Ints[1] {
					some.Ints = some.Ints[:1]
				}
				// Half the writers give up after a few milliseconds:
				// some of their writes are still on their way then.
				wctx, cancel := context.WithTimeout(ctx, time.Minute)
				if w%2 == 0 {
					wctx, cancel = context.WithTimeout(ctx, time.Duration(1+r.IntN(20))*time.Millisecond)
				}
				var err error
				if r.IntN(4) == 0 {
					_, err = c.Delete(wctx, db, coll, "", some.InExpr("id"))
				} else {
					_, err = c.Upsert(wctx, db, coll, "", gen.Columns(some.Len(), some, func(int) int64 { return int64(w*1_000_000 + i) }), some.Len())
				}
				// The proxy sees the client's deadline too, and may
				// answer first that it passed.
				timedOut := wctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded
				cancel()
				if err != nil && !timedOut {
					t.Error(err)
					return
				}
				if timedOut {
					mu.Lock()
					gaveUp++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if gaveUp == 0 {
		t.Fatal("no client gave up on a write")
	}
	b.drain(t)
	want, got := fmt.Sprint(valuesOf(t, b.src, db, coll, keys)), fmt.Sprint(valuesOf(t, b.dst, db, coll, keys))
	t.Logf("%d writes given up by their clients", gaveUp)
	if want != got {
		t.Fatalf("the source holds %s, the target %s", want, got)
	}
}
