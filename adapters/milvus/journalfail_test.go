package milvus_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/adapters/milvus"
	"github.com/zdm-io/zdm/adapters/milvus/milvustest"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
)

// failingJournal is the real journal, whose appends fail while told to:
// a store that is full, or NATS gone.
type failingJournal struct {
	*eventstore.Journal
	fail atomic.Bool
}

func (j *failingJournal) Append(ctx context.Context, subject string, data []byte) (uint64, error) {
	if j.fail.Load() {
		return 0, errors.New("nats: insufficient resources")
	}
	return j.Journal.Append(ctx, subject, data)
}

// failures records the migrations failed, with their reasons.
type failures struct {
	mu  sync.Mutex
	got []string
}

func (f *failures) FailMigration(_ context.Context, id, reason, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, id+" "+reason)
	return nil
}

func (f *failures) list() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.got, "; ")
}

func TestAWriteTooLargeForTheJournalNeverReachesTheSource(t *testing.T) {
	shape := milvus.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 128, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "big_"}
	b := newSyncBed(t, "m-big", shape, nil)
	f := &failures{}
	through := milvustest.Dial(t, b.proxyOn(t, b.journal, f))
	ctx := context.Background()
	limit := b.journal.MaxEntry()
	// Enough rows of 128 floats to pass the journal's limit.
	rows := int(limit/(128*4)) + 100
	keys := make([]int64, rows)
	for i := range keys {
		keys[i] = int64(1_000_000 + i)
	}
	gen := milvus.RowGen{Schema: shape.Schema("big_c0"), Rand: rand.New(rand.NewPCG(1, 1))}
	began := time.Now()
	_, err := through.Upsert(ctx, "big_db0", "big_c0", "", gen.Columns(rows, milvus.Keys{Ints: keys}, func(int) int64 { return 1 }), rows)
	if err == nil || !strings.Contains(err.Error(), "max_payload") || !strings.Contains(err.Error(), "smaller batches") || time.Since(began) > 2*time.Second {
		t.Fatalf("an upsert over the journal's %d bytes: %v after %s", limit, err, time.Since(began))
	}
	t.Logf("an upsert of %d rows of 128 floats (%.1f MB of vectors) refused in %s; the journal takes %d bytes",
		rows, float64(rows*128*4)/1e6, time.Since(began).Round(time.Millisecond), limit)
	if n, err := b.src.CountWhere(ctx, "big_db0", "big_c0", milvus.Keys{Ints: keys[:100]}.InExpr("id")); err != nil || n != 0 {
		t.Fatalf("the refused write reached the source: %d rows (%v)", n, err)
	}
	// The migration goes on: the next write that fits is journaled.
	if _, err := through.Upsert(ctx, "big_db0", "big_c0", "", gen.Columns(10, milvus.Keys{Ints: keys[:10]}, func(int) int64 { return 2 }), 10); err != nil {
		t.Fatal(err)
	}
	if last, err := b.journal.LastSeq(ctx, milvus.JournalPrefix(b.id)+">"); err != nil || last == 0 {
		t.Fatalf("the write after the refusal was not journaled: %d %v", last, err)
	}
	if got := f.list(); got != "" {
		t.Fatalf("the refusal failed the migration: %s", got)
	}
}

func TestAWriteTheJournalCannotTakeIsNeverAnsweredSuccess(t *testing.T) {
	shape := milvus.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "full_"}
	b := newSyncBed(t, "m-full", shape, nil)
	j, f := &failingJournal{Journal: b.journal}, &failures{}
	through := milvustest.Dial(t, b.proxyOn(t, j, f))
	ctx := context.Background()
	gen := milvus.RowGen{Schema: shape.Schema("full_c0"), Rand: rand.New(rand.NewPCG(1, 1))}
	if _, err := through.Upsert(ctx, "full_db0", "full_c0", "", gen.Columns(1, milvus.Keys{Ints: []int64{1}}, func(int) int64 { return 1 }), 1); err != nil {
		t.Fatal(err)
	}
	j.fail.Store(true)
	_, err := through.Upsert(ctx, "full_db0", "full_c0", "", gen.Columns(1, milvus.Keys{Ints: []int64{2}}, func(int) int64 { return 1 }), 1)
	if err == nil || !strings.Contains(err.Error(), "could not record it") || !strings.Contains(err.Error(), b.id) {
		t.Fatalf("a write the journal could not take was answered %v", err)
	}
	if got := f.list(); got != b.id+" journal_unavailable" {
		t.Fatalf("failed: %q", got)
	}
}

// downFailures cannot record a failure while down: the event store is on
// the same NATS as the journal.
type downFailures struct {
	failures
	down atomic.Bool
}

func (f *downFailures) FailMigration(ctx context.Context, id, reason, detail string) error {
	if f.down.Load() {
		return errors.New("nats: connection closed")
	}
	return f.failures.FailMigration(ctx, id, reason, detail)
}

func TestALostWriteWhoseFailureCannotBeRecordedBlocksTheSwitch(t *testing.T) {
	shape := milvus.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "lost_"}
	b := newSyncBed(t, "m-lost", shape, nil)
	j, f := &failingJournal{Journal: b.journal}, &downFailures{}
	addr, capture := b.captureOn(t, j, f)
	through := milvustest.Dial(t, addr)
	ctx := context.Background()
	gen := milvus.RowGen{Schema: shape.Schema("lost_c0"), Rand: rand.New(rand.NewPCG(1, 1))}
	j.fail.Store(true)
	f.down.Store(true)
	if _, err := through.Upsert(ctx, "lost_db0", "lost_c0", "", gen.Columns(1, milvus.Keys{Ints: []int64{2}}, func(int) int64 { return 1 }), 1); err == nil {
		t.Fatal("a write the journal could not take was acknowledged")
	}
	// The source holds a write the target will never get, and nothing
	// could record that: the switch is refused, naming why.
	if _, err := capture.Hold(ctx, "src"); err == nil || !strings.Contains(err.Error(), "journal_unavailable") {
		t.Fatalf("the switch of a migration that lost a write held writes: %v", err)
	}
	capture.Heartbeat(ctx)
	if got := f.list(); got != "" {
		t.Fatalf("failed while the store was down: %q", got)
	}
	f.down.Store(false)
	capture.Heartbeat(ctx)
	if got := f.list(); got != b.id+" journal_unavailable" {
		t.Fatalf("once the store is back the migration failed: %q", got)
	}
}

// restartable is a NATS server on a loopback port, configured by conf,
// that a test stops and starts again on the same port and store.
type restartable struct {
	dir, conf, listen string
	e                 *eventstore.Embedded
}

func startNATS(t *testing.T, conf string) *restartable {
	t.Helper()
	n := &restartable{dir: t.TempDir(), conf: conf, listen: "127.0.0.1:0"}
	n.start(t)
	n.listen = strings.TrimPrefix(n.e.ClientURL(), "nats://")
	t.Cleanup(n.stop)
	return n
}

func (n *restartable) start(t *testing.T) {
	t.Helper()
	e, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: n.conf, DataDir: n.dir, Listen: n.listen})
	if err != nil {
		t.Fatal(err)
	}
	n.e = e
}

func (n *restartable) stop() {
	if n.e != nil {
		n.e.Close()
		n.e = nil
	}
}

// store opens the event store on a connection that reconnects for ever,
// as zdmd's does.
func (n *restartable) store(t *testing.T) *eventstore.Store {
	t.Helper()
	nc, err := nats.Connect("nats://"+n.listen, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	st, err := eventstore.Open(context.Background(), nc)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// storedFailures fails migrations the way zdmd does: by storing the
// failure in NATS, which it cannot do while NATS is away.
type storedFailures struct{ kv *eventstore.KV }

func (f storedFailures) FailMigration(ctx context.Context, id, reason, _ string) error {
	return f.kv.Put(ctx, id, []byte(reason))
}

func (f storedFailures) reason(t *testing.T, id string) string {
	t.Helper()
	v, err := f.kv.Get(context.Background(), id)
	if errors.Is(err, eventstore.ErrKeyNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(v)
}

// answer is what a client was told of one write, and when it asked.
type answer struct {
	keys      []int64
	asked, at time.Time
	err       error
}

// writers upsert batches of fresh keys through c from several goroutines
// until stop is called; stop returns every answer.
func writers(c *milvus.Conn, shape milvus.Shape, db, coll string, n, rows int, pause time.Duration) (answers func() []answer, stop func() []answer) {
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

func ok(a answer) bool      { return a.err == nil }
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
// outage: every acknowledged write is on the target, and the target holds
// what the source holds, unless the migration failed.
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
	case reason == "journal_unavailable":
		t.Logf("the migration failed (%s): a write reached the source while its journal was away", reason)
	case reason != "":
		t.Fatalf("the migration failed for %s", reason)
	case onSource != onTarget:
		t.Fatalf("the migration goes on, but the source holds %d of the written rows and the target %d", onSource, onTarget)
	}
	t.Logf("%d writes: %d rows acknowledged, %d on the source, %d on the target", len(all), len(acked), onSource, onTarget)
}

func TestNATSStoppedMidSyncNeverAcknowledgesAnUnjournaledWrite(t *testing.T) {
	n := startNATS(t, zdm.NATSConfig)
	store := n.store(t)
	shape := milvus.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "down_"}
	b := newSyncBedOn(t, store, "m-down", shape, nil)
	f := storedFailures{estest.KV(t, store, "TEST_FAILURES")}
	addr, capture := b.captureOn(t, b.journal, f)
	b.apply(t)
	answers, stop := writers(milvustest.Dial(t, addr), shape, "down_db0", "down_c0", 4, 5, 0)
	waitFor(t, "40 writes before the outage", func() bool { return len(acknowledged(answers())) >= 200 })
	n.stop()
	stopped := time.Now()
	waitFor(t, "writes answered while NATS is down", func() bool { return len(since(answers(), stopped, nil)) >= 4 })
	restarted := time.Now()
	n.start(t)
	waitFor(t, "writes acknowledged again after NATS is back", func() bool { return len(since(answers(), restarted, ok)) >= 20 })
	all := stop()
	refused := 0
	for _, a := range all {
		if a.asked.After(stopped) && a.at.Before(restarted) {
			if a.err == nil {
				t.Fatalf("a write asked and answered while NATS was down was acknowledged: keys %v", a.keys[:1])
			}
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("no write was answered while NATS was down")
	}
	capture.Heartbeat(context.Background()) // records a failure NATS could not take before
	b.settled(t, f, "down_db0", "down_c0", all)
}

func TestAFullStoreRefusesWritesUntilTheJournalIsTrimmed(t *testing.T) {
	// A store of 4 MB; a write of 100 rows of 128 floats is about 55 KB.
	const storeBytes = 4 << 20
	conf := strings.Replace(zdm.NATSConfig, "max_file_store: 100GB", "max_file_store: 4MB", 1)
	if conf == zdm.NATSConfig {
		t.Fatal("nats.conf no longer sets max_file_store: 100GB")
	}
	n := startNATS(t, conf)
	store := n.store(t)
	shape := milvus.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 128, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "fill_"}
	b := newSyncBedOn(t, store, "m-fill", shape, nil)
	f := storedFailures{estest.KV(t, store, "TEST_FAILURES")}
	addr, _ := b.captureOn(t, b.journal, f)
	answers, stop := writers(milvustest.Dial(t, addr), shape, "fill_db0", "fill_c0", 2, 100, 0)
	// No applier yet: the journal fills the store, and writes are refused.
	waitFor(t, "a write refused by the full store", func() bool {
		for _, a := range answers() {
			if a.err != nil {
				return true
			}
		}
		return false
	})
	full := time.Now()
	for _, a := range answers() {
		if a.err != nil {
			t.Logf("refused once the store was full: %v", a.err)
			break
		}
	}
	// The applier applies and trims what it applied: writes go on, and
	// in all the journal takes several times the store's size.
	b.applier.TrimEvery(100 * time.Millisecond)
	b.apply(t)
	waitFor(t, "twice the store in rows acknowledged after the store was full", func() bool {
		rows := len(acknowledged(since(answers(), full, ok)))
		return rows*(128*4+50) > 2*storeBytes
	})
	all := stop()
	b.settled(t, f, "fill_db0", "fill_c0", all)
}
