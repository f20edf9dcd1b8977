package integration_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
)

func dropRequest(db, coll string) *milvuspb.DropCollectionRequest {
	return &milvuspb.DropCollectionRequest{DbName: db, CollectionName: coll}
}

// syncBed is an empty test bed with shape seeded on both servers, an
// event store and an applier of migration id's journal from the source to
// the target, running until the test ends.
type syncBed struct {
	bed      milvustest.Bed
	src, dst *milvus.Conn
	journal  *eventstore.Journal
	intents  *eventstore.KV
	applier  *livesync.Applier
	id       string
	// options are the migration's, as its capture is armed with.
	options domain.Options
	// sealer seals the passwords its captures journal (nil: none).
	sealer capture.Sealer
}

// newSyncBed seeds shape on the source, and target on the target (shape
// when target is nil).
func newSyncBed(t *testing.T, id string, shape datatools.Shape, target *datatools.Shape) *syncBed {
	t.Helper()
	return newSyncBedOn(t, estest.NewStore(t), id, shape, target)
}

// newSyncBedOn is newSyncBed with its journal, intents and apply
// positions in store.
func newSyncBedOn(t *testing.T, store *eventstore.Store, id string, shape datatools.Shape, target *datatools.Shape) *syncBed {
	t.Helper()
	b := &syncBed{bed: milvustest.Empty(t), id: id}
	b.src, b.dst = milvustest.Dial(t, b.bed.Source), milvustest.Dial(t, b.bed.Target)
	if target == nil {
		target = &shape
	}
	milvustest.Seed(t, b.src, shape)
	milvustest.Seed(t, b.dst, *target)
	b.journal, b.intents = estest.Journal(t, store), estest.KV(t, store, "TEST_INTENTS")
	b.applier = livesync.NewApplier(id, b.journal, b.src, b.dst, estest.KV(t, store, "TEST_APPLY"), false,
		func(string, string) bool { return true }, func(err error) { t.Error(err) }, nil)
	return b
}

// proxy serves a proxy in front of the source, with a capture armed for
// the migration, until the test ends; it returns the proxy's address.
func (b *syncBed) proxy(t *testing.T) string {
	t.Helper()
	return b.proxyOn(t, b.journal, nil)
}

// proxyOn is proxy with a capture that journals to j and fails
// migrations through f (nil: none).
func (b *syncBed) proxyOn(t *testing.T, j capture.JournalLog, f capture.Failer) string {
	t.Helper()
	addr, _ := b.captureOn(t, j, f)
	return addr
}

// captureOn is proxyOn that also returns the proxy's capture.
func (b *syncBed) captureOn(t *testing.T, j capture.JournalLog, f capture.Failer) (string, *capture.Capture) {
	t.Helper()
	p, c := b.armedProxy(j, f)
	return serveProxy(t, p), c
}

// armedProxy is a proxy in front of the source with a capture armed for
// the migration, journaling to j and failing migrations through f.
func (b *syncBed) armedProxy(j capture.JournalLog, f capture.Failer) (*capture.Proxy, *capture.Capture) {
	c := capture.NewCapture(j, f, nil)
	c.KeepGivenKeys(b.intents)
	c.SealPasswords(b.sealer)
	c.Arm("src", b.id, b.options)
	// As in zdmd, the applier runs beside the capture that journals.
	b.applier.AwaitOutcomes(c)
	return capture.NewProxy("src", func() string { return b.bed.Source }, c, nil), c
}

// serveProxy serves p on a loopback port until the test ends and returns
// its address.
func serveProxy(t *testing.T, p *capture.Proxy) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.Serve(ln) }()
	t.Cleanup(p.Stop)
	return ln.Addr().String()
}

// apply runs the applier until the test ends.
func (b *syncBed) apply(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.applier.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
}

// drain waits until the applier applied the whole journal.
func (b *syncBed) drain(t *testing.T) {
	t.Helper()
	b.drainWithin(t, time.Minute)
}

// drainWithin is drain with a deadline of its own.
func (b *syncBed) drainWithin(t *testing.T, within time.Duration) {
	t.Helper()
	ctx := context.Background()
	fence, err := b.journal.LastSeq(ctx, capture.JournalPrefix(b.id)+">")
	if err != nil || fence == 0 {
		t.Fatalf("nothing journaled: %d %v", fence, err)
	}
	began := time.Now()
	for deadline := began.Add(within); ; time.Sleep(50 * time.Millisecond) {
		drained, err := b.applier.Drained(ctx, fence)
		if err != nil {
			t.Fatal(err)
		}
		if drained {
			if d := time.Since(began); d > 10*time.Second {
				t.Logf("the journal was applied in %s", d.Round(time.Second))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the journal was not applied within %s", within)
		}
	}
}

// valuesOf reads the "n" field of up to 100 of keys in db/coll, by key
// ("id"); a key that is not there is missing from the map.
func valuesOf(t *testing.T, c *milvus.Conn, db, coll string, keys milvus.Keys) map[string]int64 {
	t.Helper()
	return valuesIn(t, c, db, coll, "", keys)
}

// valuesIn is valuesOf in one partition ("": all).
func valuesIn(t *testing.T, c *milvus.Conn, db, coll, part string, keys milvus.Keys) map[string]int64 {
	t.Helper()
	var parts []string
	if part != "" {
		parts = []string{part}
	}
	cols, err := c.Query(context.Background(), db, coll, keys.InExpr("id"), []string{"id", "n"}, parts, 100)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	ns := milvus.Column(cols, "n").GetScalars().GetLongData().GetData()
	for i, k := range milvus.KeysOf(milvus.Column(cols, "id")).Strings() {
		out[k] = ns[i]
	}
	return out
}

// journaled is every entry journaled on subject so far, end to end.
func (b *syncBed) journaled(t *testing.T, subject string) []byte {
	t.Helper()
	var all []byte
	for seq := uint64(1); ; seq++ {
		s, data, found, err := b.journal.Next(context.Background(), subject, seq)
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			return all
		}
		all, seq = append(all, data...), s
	}
}

// resolved returns a journal subject's entries as the applier applies
// them, in the journal's order: each write journaled first with what its
// outcome says (Timestamp, IDs), left out if refused, never sent, or
// without an outcome yet; other entries as they are.
func resolved(t *testing.T, j capture.JournalLog, subject string) []capture.Entry {
	t.Helper()
	var all []capture.Entry
	outcomes := map[string]capture.Resolved{}
	for seq := uint64(0); ; {
		s, data, ok, err := j.Next(context.Background(), subject, seq+1)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		seq = s
		e, err := capture.UnmarshalEntry(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range e.Resolutions() {
			outcomes[r.Intent] = r
		}
		if e.Op != capture.OpOutcome {
			all = append(all, e)
		}
	}
	out := all[:0]
	for _, e := range all {
		if e.Pending {
			o, ok := outcomes[e.Intent]
			if !ok || o.Outcome != capture.OutcomeApplied {
				continue
			}
			e.Pending, e.Timestamp, e.IDs = false, o.Timestamp, o.IDs
		}
		out = append(out, e)
	}
	return out
}

// switchBed is one collection of 100 rows (prefix+"db0"/prefix+"c0")
// copied to the target, its sync armed with cfg (failing the migration
// into failed), and a proxy in front of the source that journals into it.
type switchBed struct {
	src, dst, via *milvus.Conn
	syncer        *livesync.Syncer
	failed        *failures
	m             *domain.Migration
	shape         datatools.Shape
	db, coll      string
}

func newSwitchBed(t *testing.T, prefix string, cfg livesync.Config) *switchBed {
	t.Helper()
	return newSwitchBedOf(t, prefix, 100, cfg)
}

// newSwitchBedOf is newSwitchBed with rows rows.
func newSwitchBedOf(t *testing.T, prefix string, rows int64, cfg livesync.Config) *switchBed {
	t.Helper()
	bed := milvustest.Empty(t)
	b := &switchBed{src: milvustest.Dial(t, bed.Source), dst: milvustest.Dial(t, bed.Target), db: prefix + "db0", coll: prefix + "c0",
		shape: datatools.Shape{Databases: 1, Collections: 1, Rows: rows, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: prefix}}
	milvustest.Seed(t, b.src, b.shape)
	resolve, reader := copied(t, bed)
	b.m = reader.m
	store := estest.NewStore(t)
	var c *capture.Capture
	b.failed = &failures{}
	b.syncer, c = armedSyncer(t, resolve, reader, store, estest.Journal(t, store), cfg, b.failed)
	b.via = milvustest.Dial(t, serveProxy(t, capture.NewProxy("src", func() string { return bed.Source }, c, nil)))
	return b
}

// partitionMade makes a partition through the proxy and waits for the
// target to have it.
func (b *switchBed) partitionMade(t *testing.T, part string) {
	t.Helper()
	ctx := context.Background()
	if err := b.via.CreatePartition(ctx, b.db, b.coll, part); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the partition on the target", func() bool {
		h, err := b.dst.Svc.HasPartition(b.dst.In(ctx, b.db), &milvuspb.HasPartitionRequest{DbName: b.db, CollectionName: b.coll, PartitionName: part})
		return err == nil && h.GetValue()
	})
}

// partitionGone drops a partition from the target behind zdm's back: the
// writes into it cannot be applied.
func (b *switchBed) partitionGone(t *testing.T, part string) {
	t.Helper()
	ctx := context.Background()
	released, err := b.dst.Svc.ReleasePartitions(b.dst.In(ctx, b.db), &milvuspb.ReleasePartitionsRequest{DbName: b.db, CollectionName: b.coll, PartitionNames: []string{part}})
	if err := milvus.Check("release", released, err); err != nil {
		t.Fatal(err)
	}
	dropped, err := b.dst.Svc.DropPartition(b.dst.In(ctx, b.db), &milvuspb.DropPartitionRequest{DbName: b.db, CollectionName: b.coll, PartitionName: part})
	if err := milvus.Check("drop partition", dropped, err); err != nil {
		t.Fatal(err)
	}
}

// switchedEqual switches, sends the held writes back to the source (the
// test goes on with it), and fails the test unless the check found the
// clusters equal.
func (b *switchBed) switchedEqual(t *testing.T) (domain.SwitchedOver, domain.Verified) {
	t.Helper()
	sw, check, route, err := b.syncer.Switch(context.Background(), b.m)
	if err != nil {
		t.Fatal(err)
	}
	route(false)
	if !check.Equal {
		t.Fatalf("the switch's check: %s", check.Report)
	}
	return sw, check
}

// switchWhileWriting switches m while a client writes through via batches
// of 10 new keys of db/coll (of shape), each batch sent times times and
// one every pause, for a second before the switch and throughout it. The
// held writes go back to the source. It returns the switch's outcome and
// the rows acknowledged.
func switchWhileWriting(t *testing.T, syncer *livesync.Syncer, m *domain.Migration, via *milvus.Conn, shape datatools.Shape, db, coll string,
	times int, pause time.Duration) (domain.SwitchedOver, domain.Verified, int64, error) {
	t.Helper()
	ctx := context.Background()
	wctx, stopWriting := context.WithCancel(ctx)
	var wrote atomic.Int64
	var writing sync.WaitGroup
	writing.Go(func() {
		gen := milvus.RowGen{Schema: shape.Schema(coll), Rand: milvustest.NewRand()}
		for key := int64(1_000_000); wctx.Err() == nil; key += 10 {
			keys := milvus.Keys{}
			for i := range int64(10) {
				keys.Ints = append(keys.Ints, key+i)
			}
			rows := gen.Columns(10, keys, func(int) int64 { return 1 })
			for range times {
				if _, err := via.Insert(wctx, db, coll, "", rows, 10); err == nil {
					wrote.Add(10)
				}
			}
			time.Sleep(pause)
		}
	})
	time.Sleep(time.Second)
	sw, check, route, err := syncer.Switch(ctx, m)
	if err == nil {
		route(false)
	}
	stopWriting()
	writing.Wait()
	return sw, check, wrote.Load(), err
}
