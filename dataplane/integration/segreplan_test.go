package integration_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/dataplane/verify"
	"github.com/zdm-io/zdm/domain"
)

// Segments listed for the copy are compacted into one and collected
// before they are staged: the copy lists their partition again, drops
// what it staged of it, and copies the new segment; the target ends with
// every row once.
func TestSegmentsCompactedAwayAfterTheListingAreListedAgain(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src, dst := milvustest.Dial(t, bed.Source), milvustest.Dial(t, bed.Target)
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 3000, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "gone_"}
	milvustest.Seed(t, src, shape)
	const db, coll = "gone_db0", "gone_c0"
	// Three flushed segments: the seeded rows, and two more batches.
	gen := milvus.RowGen{Schema: shape.Schema(coll), Rand: rand.New(rand.NewPCG(3, 3))}
	for batch := range int64(2) {
		if err := src.FlushAndWait(ctx, db, coll); err != nil {
			t.Fatal(err)
		}
		keys := milvus.Keys{}
		for i := range int64(1500) {
			keys.Ints = append(keys.Ints, 100000*(batch+1)+i)
		}
		if _, err := src.Insert(ctx, db, coll, "", gen.Columns(1500, keys, func(int) int64 { return 1 }), 1500); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.Delete(ctx, db, coll, "", "id < 100"); err != nil {
		t.Fatal(err)
	}

	// zdm reads the source's binlogs from a mirror of its storage, from
	// which the dropped segments are removed (see CompactAndCollect).
	mirror := t.TempDir()
	milvustest.Mirror(t, bed.DataDir("source"), mirror)
	c := rowcopy.NewCopier(mirroredSource{storageEndpoints{bed}, mirror}, rowcopy.Config{}, nil)
	m := planned(t, c)
	var mu sync.Mutex
	into := recordInto(&mu, m)
	var dropped []int64
	var replanned []string
	record := func(ctx context.Context, p domain.BulkCopyProgressed) error {
		err := into(ctx, p)
		switch {
		case p.Plan != nil && p.Replanned == "" && dropped == nil:
			// Between the listing and the first segment staged.
			dropped = milvustest.CompactAndCollect(t, src, bed.DataDir("source"), mirror, db, coll)
		case p.Replanned != "":
			replanned = append(replanned, p.Replanned)
		}
		return err
	}
	if err := c.Copy(ctx, m, record); err != nil {
		t.Fatal(err)
	}
	if len(replanned) != 1 {
		t.Fatalf("the partition was listed again %d times (%v), want once; segments dropped: %v", len(replanned), replanned, dropped)
	}
	for _, p := range m.Collections {
		for _, name := range p.Planned {
			for _, seg := range dropped {
				if strings.HasSuffix(name, "/"+milvus.Keys{Ints: []int64{seg}}.Strings()[0]) {
					t.Fatalf("the plan still names dropped segment %d: %v", seg, p.Planned)
				}
			}
		}
	}
	if n, err := dst.CountWhere(ctx, db, coll, ""); err != nil || n != 5900 {
		t.Fatalf("%d rows on the target (%v), want 5900: a row imported twice, or lost", n, err)
	}
	rep, err := verify.Verify(ctx, src, dst, verify.Options{SampleEvery: 1})
	if err != nil || !rep.Equal {
		t.Fatalf("after the copy: %s %v", rep.Summary(), err)
	}
}

// Segments whose files are gone every time the copy lists the source
// (here read from a mirror of its storage, emptied after the plan) fail
// the copy segment_gone after five listings, naming the collection.
func TestSegmentsThatKeepVanishingFailTheCopy(t *testing.T) {
	bed := flushedOne(t, "vanish_", 500)
	ctx := context.Background()
	mirror := t.TempDir()
	milvustest.Mirror(t, bed.DataDir("source"), mirror)
	c := rowcopy.NewCopier(mirroredSource{storageEndpoints{bed}, mirror}, rowcopy.Config{}, nil)
	m := planned(t, c)
	if err := os.RemoveAll(mirror); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	err := c.Copy(ctx, m, recordInto(&mu, m))
	var se *domain.StepError
	if !errors.As(err, &se) || se.Reason != "segment_gone" || !se.Permanent || !strings.Contains(err.Error(), "vanish_db0/vanish_c0") {
		t.Fatalf("the copy: %v, want a permanent segment_gone naming the collection", err)
	}
	t.Logf("the copy: %v", err)
}

// A source registered with a storage its Milvus does not write to (here
// an empty directory) is copied by rows, and the preflight says why; asked
// for a segment copy, it refuses it.
func TestASourceStorageWithoutItsSegmentsIsFoundByThePreflight(t *testing.T) {
	bed := flushedOne(t, "wrongst_", 500)
	ctx := context.Background()
	c := rowcopy.NewCopier(mirroredSource{storageEndpoints{bed}, t.TempDir()}, rowcopy.Config{}, nil)
	m := planned(t, c)
	var pf rowcopy.Preflight
	if err := json.Unmarshal(m.Preflight, &pf); err != nil {
		t.Fatal(err)
	}
	if pf.CopyMode != domain.CopyModeRows || !strings.Contains(pf.CopyModeReason, "holds no logs of segment") {
		t.Fatalf("preflight: mode %q (%s), want rows, saying the storage holds no logs", pf.CopyMode, pf.CopyModeReason)
	}
	t.Logf("preflight: %s", pf.CopyModeReason)
	m.Options.CopyMode = domain.CopyModeSegments
	_, err := c.Plan(ctx, m)
	var se *domain.StepError
	if !errors.As(err, &se) || se.Reason != "preflight_refused" || !strings.Contains(err.Error(), "options.copy_mode is segments, but the source's storage") {
		t.Fatalf("a segment copy asked for: %v, want preflight_refused naming the storage", err)
	}
}

// flushedOne is a bed whose source has one collection of rows rows,
// prefix+"db0"/prefix+"c0", flushed.
func flushedOne(t *testing.T, prefix string, rows int64) milvustest.Bed {
	t.Helper()
	bed := milvustest.Empty(t)
	src := milvustest.Dial(t, bed.Source)
	milvustest.Seed(t, src, datatools.Shape{Databases: 1, Collections: 1, Rows: rows, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: prefix})
	if err := src.FlushAndWait(context.Background(), prefix+"db0", prefix+"c0"); err != nil {
		t.Fatal(err)
	}
	return bed
}

// mirroredSource gives the source's storage as a mirror of it.
type mirroredSource struct {
	storageEndpoints
	mirror string
}

func (e mirroredSource) Endpoint(ctx context.Context, id string) (milvus.Endpoint, error) {
	ep, err := e.storageEndpoints.Endpoint(ctx, id)
	if id == "src" {
		ep.StoragePath = e.mirror
	}
	return ep, err
}
