package integration_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/eventstore"
)

// failingJournal is the real journal, whose appends fail while told to:
// a store that is full, or NATS gone.
type failingJournal struct {
	*eventstore.Journal
	fail    atomic.Bool
	appends atomic.Int64
	// limit, if set, is the largest entry it says it takes.
	limit int64
}

func (j *failingJournal) MaxEntry() int64 {
	if j.limit > 0 {
		return j.limit
	}
	return j.Journal.MaxEntry()
}

func (j *failingJournal) Append(ctx context.Context, subject string, data []byte, id string) (uint64, error) {
	j.appends.Add(1)
	if j.fail.Load() {
		return 0, errors.New("nats: insufficient resources")
	}
	return j.Journal.Append(ctx, subject, data, id)
}

// failures records the migrations failed, with their reasons.
type failures struct {
	mu      sync.Mutex
	got     []string
	details []string
}

func (f *failures) FailMigration(_ context.Context, id, reason, detail string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, id+" "+reason)
	f.details = append(f.details, detail)
	return nil
}

// detail is what the last failure said ("" if none).
func (f *failures) detail() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.details) == 0 {
		return ""
	}
	return f.details[len(f.details)-1]
}

func (f *failures) list() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.got, "; ")
}

// journalBed is a sync bed of one collection, <prefix>_db0/<prefix>_c0
// of dim floats, with a proxy on a failing journal that says it takes
// limit bytes (0: what the real one says), and rows for it.
func journalBed(t *testing.T, prefix string, dim int, limit int64) (*syncBed, *failingJournal, *failures, *milvus.Conn, milvus.RowGen) {
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: dim, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: prefix + "_"}
	b := newSyncBed(t, "m-"+prefix, shape, nil)
	j, f := &failingJournal{Journal: b.journal, limit: limit}, &failures{}
	through := milvustest.Dial(t, b.proxyOn(t, j, f))
	return b, j, f, through, milvus.RowGen{Schema: shape.Schema(prefix + "_c0"), Rand: rand.New(rand.NewPCG(1, 1))}
}

func TestAWriteTooLargeForTheJournalNeverReachesTheSource(t *testing.T) {
	// A journal that says it takes 4 MB: the proxy asks it before
	// anything is sent.
	b, j, f, through, gen := journalBed(t, "big", 128, 4<<20)
	ctx := context.Background()
	// Enough rows of 128 floats to pass the journal's limit.
	rows := int(j.limit/(128*4)) + 100
	keys := make([]int64, rows)
	for i := range keys {
		keys[i] = int64(1_000_000 + i)
	}
	began := time.Now()
	_, err := through.Upsert(ctx, "big_db0", "big_c0", "", gen.Columns(rows, milvus.Keys{Ints: keys}, func(int) int64 { return 1 }), rows)
	// Refused before any try to journal it.
	if err == nil || !strings.Contains(err.Error(), "more than a migration's journal takes") || !strings.Contains(err.Error(), "smaller batches") || j.appends.Load() != 0 {
		t.Fatalf("an upsert over the journal's %d bytes: %v after %s and %d appends", j.limit, err, time.Since(began), j.appends.Load())
	}
	t.Logf("an upsert of %d rows of 128 floats (%.1f MB of vectors) refused in %s; the journal takes %d bytes",
		rows, float64(rows*128*4)/1e6, time.Since(began).Round(time.Millisecond), j.limit)
	if n, err := b.src.CountWhere(ctx, "big_db0", "big_c0", milvus.Keys{Ints: keys[:100]}.InExpr("id")); err != nil || n != 0 {
		t.Fatalf("the refused write reached the source: %d rows (%v)", n, err)
	}
	// The migration goes on: the next write that fits is journaled.
	if _, err := through.Upsert(ctx, "big_db0", "big_c0", "", gen.Columns(10, milvus.Keys{Ints: keys[:10]}, func(int) int64 { return 2 }), 10); err != nil {
		t.Fatal(err)
	}
	if last, err := b.journal.LastSeq(ctx, capture.JournalPrefix(b.id)+">"); err != nil || last == 0 {
		t.Fatalf("the write after the refusal was not journaled: %d %v", last, err)
	}
	if got := f.list(); got != "" {
		t.Fatalf("the refusal failed the migration: %s", got)
	}
}

// Milvus takes a write of up to 64 MB as it ships, and JetStream keeps at
// most 32 MB in a message: a write between the two, as a bulk loader
// sends, is journaled in parts and reaches the target whole.
func TestAWriteLargerThanAJournalMessageReachesTheTarget(t *testing.T) {
	b, j, f, through, gen := journalBed(t, "huge", 128, 0)
	ctx := context.Background()
	const large = 70_000 // rows of 128 floats: 36 MB of vectors
	keys := make([]int64, large)
	for i := range keys {
		keys[i] = int64(5_000_000 + i)
	}
	cols := gen.Columns(large, milvus.Keys{Ints: keys}, func(int) int64 { return 3 })
	began := time.Now()
	if _, err := through.Upsert(ctx, "huge_db0", "huge_c0", "", cols, large); err != nil {
		t.Fatalf("an upsert of %d rows (36 MB): %v", large, err)
	}
	t.Logf("an upsert of %d rows of 128 floats (%.1f MB of vectors) journaled and sent in %s, in %d appends",
		large, float64(large*128*4)/1e6, time.Since(began).Round(time.Millisecond), j.appends.Load())
	b.apply(t)
	// Correctness, not speed: a busy host takes a minute or more to apply
	// 36 MB with the race detector on.
	b.drainWithin(t, 4*time.Minute)
	if n, err := b.dst.CountWhere(ctx, "huge_db0", "huge_c0", "id >= 5000000"); err != nil || n != large {
		t.Fatalf("the target holds %d of the %d rows of the large upsert (%v)", n, large, err)
	}
	// The vectors, the bulk of the parts, as the source has them.
	last := milvus.Keys{Ints: keys[large-3:]}
	if src, dst := vectorsOf(t, b.src, last), vectorsOf(t, b.dst, last); len(src) != 3 || fmt.Sprint(src) != fmt.Sprint(dst) {
		t.Fatalf("the last rows' vectors differ:\nsource %v\ntarget %v", src, dst)
	}
	if got := f.list(); got != "" {
		t.Fatalf("the migration failed: %s", got)
	}
}

// vectorsOf reads the vectors of keys in huge_db0/huge_c0, by key.
func vectorsOf(t *testing.T, c *milvus.Conn, keys milvus.Keys) map[int64][]float32 {
	t.Helper()
	page, err := c.QueryAt(context.Background(), "huge_db0", "huge_c0", keys.InExpr("id"), []string{"id", "v"}, nil, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids, vecs := milvus.Column(page, "id").GetScalars().GetLongData().GetData(), milvus.Column(page, "v").GetVectors()
	out := map[int64][]float32{}
	for i, id := range ids {
		dim := int(vecs.GetDim())
		out[id] = vecs.GetFloatVector().GetData()[i*dim : (i+1)*dim]
	}
	return out
}

// A write is journaled before it is sent: one the journal cannot take
// never reaches the source, its client is told to try again, and the
// migration goes on.
func TestAWriteTheJournalCannotTakeIsNotSent(t *testing.T) {
	b, j, f, through, gen := journalBed(t, "full", 8, 0)
	ctx := context.Background()
	if _, err := through.Upsert(ctx, "full_db0", "full_c0", "", gen.Columns(1, milvus.Keys{Ints: []int64{1}}, func(int) int64 { return 1 }), 1); err != nil {
		t.Fatal(err)
	}
	j.fail.Store(true)
	_, err := through.Upsert(ctx, "full_db0", "full_c0", "", gen.Columns(1, milvus.Keys{Ints: []int64{1002}}, func(int) int64 { return 1 }), 1)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "not sent") {
		t.Fatalf("a write the journal could not take was answered %v", err)
	}
	// The journal is back: the outcome saying the write was not sent lands.
	j.fail.Store(false)
	if n, err := b.src.CountWhere(ctx, "full_db0", "full_c0", "id in [1002]"); err != nil || n != 0 {
		t.Fatalf("the write the journal could not take reached the source: %d rows (%v)", n, err)
	}
	if got := f.list(); got != "" {
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

// DDL is journaled once the source applied it: one the journal cannot
// take fails the migration, and if even that cannot be recorded, the
// switch is refused until it is.
func TestLostDDLWhoseFailureCannotBeRecordedBlocksTheSwitch(t *testing.T) {
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "lost_"}
	b := newSyncBed(t, "m-lost", shape, nil)
	j, f := &failingJournal{Journal: b.journal}, &downFailures{}
	addr, capture := b.captureOn(t, j, f)
	through := milvustest.Dial(t, addr)
	ctx := context.Background()
	j.fail.Store(true)
	f.down.Store(true)
	if err := through.CreatePartition(ctx, "lost_db0", "lost_c0", "lost_p1"); err == nil {
		t.Fatal("DDL the journal could not take was acknowledged")
	}
	// The source holds a change the target will never get, and nothing
	// could record that: the switch is refused, naming why.
	if _, err := capture.Hold(ctx, "src"); err == nil || !strings.Contains(err.Error(), "journal_unavailable") {
		t.Fatalf("the switch of a migration that lost DDL held writes: %v", err)
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

func (f storedFailures) FailMigration(ctx context.Context, id, reason, _ string) error {
	return f.kv.Put(ctx, id, []byte(reason))
}
