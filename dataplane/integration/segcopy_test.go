package integration_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/dataplane/segcopy"
	"github.com/zdm-io/zdm/dataplane/verify"
	"github.com/zdm-io/zdm/domain"
)

// The source's flushed segments, copied file by file into the target's
// storage and imported partition by partition, give the target the same
// rows, the source's deletes applied, without one query of the source's
// rows.
func TestSegmentsCopiedAndImportedGiveTheSameRows(t *testing.T) {
	bed := milvustest.Empty(t)
	copySegmentsAndCompare(t, milvustest.Dial(t, bed.Source), milvustest.Dial(t, bed.Target),
		segcopy.Local{Root: bed.DataDir("source")}, segcopy.Local{Root: bed.DataDir("target")})
}

// A migration between two Milvus servers that keep their binlogs in
// buckets of an S3 server is copied by segments: zdm lists and reads the
// source's bucket and stages into the target's, which imports from it.
func TestAMigrationBetweenMilvusServersOnS3IsCopiedBySegments(t *testing.T) {
	bed := milvustest.Require(t)
	s3 := milvustest.S3(t)
	eps := endpointsOf{
		"src": {Address: bed.OnS3(t, "s3-source", 19700, s3, "source-bucket"), StorageS3: &domain.S3Storage{Endpoint: s3, Bucket: "source-bucket", RootPath: "files"},
			StorageAccessKey: milvustest.S3AccessKey, StorageSecretKey: milvustest.S3SecretKey},
		"dst": {Address: bed.OnS3(t, "s3-target", 19730, s3, "target-bucket"), StorageS3: &domain.S3Storage{Endpoint: s3, Bucket: "target-bucket", RootPath: "files"},
			StorageAccessKey: milvustest.S3AccessKey, StorageSecretKey: milvustest.S3SecretKey},
	}
	ctx := context.Background()
	src, dst := milvustest.Dial(t, eps["src"].Address), milvustest.Dial(t, eps["dst"].Address)
	milvustest.Seed(t, src, datatools.Shape{Databases: 1, Collections: 1, Partitions: 1, Rows: 6000, Dim: 8, PKType: "int64", Dynamic: true,
		Index: "FLAT", Load: true, Shards: 1, Prefix: "s3_"})
	if err := src.FlushAndWait(ctx, "s3_db0", "s3_c0"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Delete(ctx, "s3_db0", "s3_c0", "", "id < 100"); err != nil {
		t.Fatal(err)
	}
	c := rowcopy.NewCopier(eps, rowcopy.Config{}, nil)
	m := planned(t, c)
	var pf rowcopy.Preflight
	if err := json.Unmarshal(m.Preflight, &pf); err != nil {
		t.Fatal(err)
	}
	if pf.CopyMode != domain.CopyModeSegments {
		t.Fatalf("preflight: mode %q (%s)", pf.CopyMode, pf.CopyModeReason)
	}
	var mu sync.Mutex
	if err := c.Copy(ctx, m.Clone(), recordInto(&mu, m)); err != nil {
		t.Fatal(err)
	}
	rep, err := verify.Verify(ctx, src, dst, verify.Options{SampleEvery: 1})
	if err != nil || !rep.Equal {
		t.Fatalf("after the copy: %s %v", rep.Summary(), err)
	}
	if n, err := dst.CountWhere(ctx, "s3_db0", "s3_c0", ""); err != nil || n != 5900 {
		t.Fatalf("%d rows on the target (%v), want 5900", n, err)
	}
	// The staged files went once imported.
	staged, err := segcopy.S3Of(*eps["dst"].StorageS3, "zdm", "zdm-secret")
	if err != nil {
		t.Fatal(err)
	}
	if left, err := staged.List(ctx, "zdm-import/"); err != nil || len(left) != 0 {
		t.Fatalf("staged files left in the target's bucket: %d (%v)", len(left), err)
	}
}

// endpointsOf resolves servers of a test with their storage or
// credentials.
type endpointsOf map[string]milvus.Endpoint

func (e endpointsOf) Endpoint(_ context.Context, id string) (milvus.Endpoint, error) {
	return e[id], nil
}

// copySegmentsAndCompare seeds the source, deletes rows it flushed, copies
// its segments through the two storages, imports them into the target and
// compares the two servers row by row.
func copySegmentsAndCompare(t *testing.T, src, dst *milvus.Conn, from, to segcopy.Storage) {
	ctx := context.Background()
	shape := datatools.Shape{Databases: 1, Collections: 1, Partitions: 1, Rows: 6000, Dim: 8, PKType: "int64", Dynamic: true, Index: "FLAT", Load: true, Shards: 1, Prefix: "seg_"}
	milvustest.Seed(t, src, shape)
	const db, coll = "seg_db0", "seg_c0"
	// Deletes of rows already flushed land in delete logs.
	if err := src.FlushAndWait(ctx, db, coll); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Delete(ctx, db, coll, "", "id < 100"); err != nil {
		t.Fatal(err)
	}
	listing, err := segcopy.List(ctx, src, db, coll)
	if err != nil {
		t.Fatal(err)
	}
	col, err := src.Structure(ctx, db, coll)
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.CreateDatabase(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := dst.CreateCollection(ctx, db, col.Schema, milvus.CollectionSettings{Shards: col.ShardsNum,
		Level: commonpb.ConsistencyLevel(commonpb.ConsistencyLevel_value[col.ConsistencyLevel]), Properties: col.Properties}); err != nil {
		t.Fatal(err)
	}
	for _, p := range col.Partitions {
		if p != "_default" {
			if err := dst.CreatePartition(ctx, db, coll, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := &segcopy.Copier{Source: from, Target: to, Stage: "zdm-import/test"}
	var segments int
	var imported int64
	for _, p := range listing.Partitions {
		for _, s := range p.Segments {
			if _, err := c.CopySegment(ctx, listing.Collection, p.ID, s); err != nil {
				t.Fatal(err)
			}
			segments++
		}
		if len(p.Segments) == 0 {
			continue
		}
		n, err := c.Import(ctx, dst, db, coll, p.Name, listing.Collection, p.ID, false)
		if err != nil {
			t.Fatal(err)
		}
		imported += n
	}
	t.Logf("%d segments, %d rows imported", segments, imported)
	for _, idx := range col.Indexes {
		if err := dst.CreateIndex(ctx, db, coll, idx); err != nil {
			t.Fatal(err)
		}
	}
	if err := dst.Load(ctx, db, coll); err != nil {
		t.Fatal(err)
	}
	rep, err := verify.Verify(ctx, src, dst, verify.Options{SampleEvery: 1})
	if err != nil || !rep.Equal {
		t.Fatalf("after the import: %s %v", rep.Summary(), err)
	}
	if n, err := dst.CountWhere(ctx, db, coll, ""); err != nil || n != 5900 {
		t.Fatalf("%d rows on the target (%v), want 5900", n, err)
	}
}

// storageEndpoints resolves the test bed's servers with their storage.
type storageEndpoints struct{ bed milvustest.Bed }

func (e storageEndpoints) Endpoint(_ context.Context, id string) (milvus.Endpoint, error) {
	if id == "src" {
		return milvus.Endpoint{Address: e.bed.Source, StoragePath: e.bed.DataDir("source")}, nil
	}
	return milvus.Endpoint{Address: e.bed.Target, StoragePath: e.bed.DataDir("target")}, nil
}

// A segment copy records each segment staged and each partition imported;
// a zdmd killed after an import finished but before it was recorded
// imports nothing twice when the copy resumes. A collection with autoID
// keys keeps them; one with a partition key has each row in the
// partition its key names, as on the source. A collection that a plan of
// an earlier build put down to be copied by rows is copied by rows.
func TestASegmentCopyResumesWithoutImportingTwice(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src, dst := milvustest.Dial(t, bed.Source), milvustest.Dial(t, bed.Target)
	milvustest.Seed(t, src, datatools.Shape{Databases: 1, Collections: 2, Partitions: 1, Rows: 4000, Dim: 8, PKType: "int64", Dynamic: true,
		Index: "FLAT", Load: true, Shards: 1, Prefix: "segr_"})
	milvustest.Seed(t, src, datatools.Shape{Databases: 1, Collections: 1, Rows: 500, Dim: 8, PKType: "int64", AutoID: true,
		Index: "FLAT", Load: true, Shards: 1, Prefix: "sega_"})
	partitionKeyed(t, src, "segk_db0", "segk_c0", 300)
	if err := src.FlushAndWait(ctx, "segr_db0", "segr_c0"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Delete(ctx, "segr_db0", "segr_c0", "", "id < 50"); err != nil {
		t.Fatal(err)
	}
	c := rowcopy.NewCopier(storageEndpoints{bed}, rowcopy.Config{}, nil)
	m := planned(t, c)
	var pf rowcopy.Preflight
	if err := json.Unmarshal(m.Preflight, &pf); err != nil {
		t.Fatal(err)
	}
	if pf.CopyMode != domain.CopyModeSegments || len(pf.ByRows) != 0 {
		t.Fatalf("preflight: mode %q (%s), by rows %v", pf.CopyMode, pf.CopyModeReason, pf.ByRows)
	}
	pf.ByRows = []string{"segr_db0/segr_c1: planned by an earlier build"}
	earlier, err := json.Marshal(pf)
	if err != nil {
		t.Fatal(err)
	}
	m.Preflight = earlier
	var mu sync.Mutex
	failed := false
	var failMu sync.Mutex
	record := func(fail bool) func(context.Context, domain.BulkCopyProgressed) error {
		into := recordInto(&mu, m)
		return func(ctx context.Context, p domain.BulkCopyProgressed) error {
			failMu.Lock()
			if fail && !failed && strings.HasPrefix(p.Range, "import/") {
				failed = true // the import ran; its checkpoint is lost
				failMu.Unlock()
				return errors.New("killed before the import was recorded")
			}
			failMu.Unlock()
			return into(ctx, p)
		}
	}
	if err := c.Copy(ctx, m, record(true)); err == nil || !failed {
		t.Fatalf("the first copy: %v, import failed %v", err, failed)
	}
	if err := c.Copy(ctx, m.Clone(), record(false)); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Collections {
		if !p.Done {
			t.Fatalf("%s/%s not done: %+v", p.Database, p.Collection, p)
		}
		segmented := p.Collection != "segr_c1"
		if hasSegments := len(p.Planned) > 0 && strings.HasPrefix(p.Planned[0], "segment/"); hasSegments != segmented {
			t.Fatalf("%s: planned %v", p.Collection, p.Planned)
		}
	}
	for _, k := range []struct {
		db, coll string
		want     int64
	}{{"segr_db0", "segr_c0", 3950}, {"segr_db0", "segr_c1", 4000}, {"sega_db0", "sega_c0", 500}, {"segk_db0", "segk_c0", 300}} {
		if n, err := dst.CountWhere(ctx, k.db, k.coll, ""); err != nil || n != k.want {
			t.Fatalf("%s on the target: %d rows (%v), want %d: an import ran twice, or missed rows", k.coll, n, err, k.want)
		}
	}
	rep, err := verify.Verify(ctx, src, dst, verify.Options{SampleEvery: 1})
	if err != nil || !rep.Equal {
		t.Fatalf("after the copy: %s %v", rep.Summary(), err)
	}
	// A query on a partition key reads only the partition the key names:
	// a row imported into another would not be found.
	at := func(c *milvus.Conn) uint64 {
		ts, err := c.AllocTimestamp(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	srcAt, dstAt := at(src), at(dst)
	for n := range 300 {
		expr := fmt.Sprintf("n == %d", n)
		a, aerr := src.CountAt(ctx, "segk_db0", "segk_c0", expr, srcAt)
		b, berr := dst.CountAt(ctx, "segk_db0", "segk_c0", expr, dstAt)
		if aerr != nil || berr != nil || a != 1 || b != 1 {
			t.Fatalf("rows of partition key %s: %d on the source (%v), %d on the target (%v), want 1 on each", expr, a, aerr, b, berr)
		}
	}
	if _, err := os.Stat(filepath.Join(bed.DataDir("target"), "zdm-import", m.ID)); !os.IsNotExist(err) {
		t.Fatalf("the staged segments were left on the target's storage: %v", err)
	}
}

// partitionKeyed makes db/coll with a partition key ("n", over four
// partitions), indexed and loaded, holding rows rows.
func partitionKeyed(t *testing.T, c *milvus.Conn, db, coll string, rows int) {
	t.Helper()
	ctx := context.Background()
	shape := datatools.Shape{Dim: 8, PKType: "int64"}
	schema := shape.Schema(coll)
	schema.Fields[1].IsPartitionKey = true
	if err := c.CreateDatabase(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateCollection(ctx, db, schema, milvus.CollectionSettings{Shards: 1, Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateIndex(ctx, db, coll, milvus.Index{Name: "v_idx", Field: "v", Params: map[string]string{"index_type": "FLAT", "metric_type": "L2", "params": "{}"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Load(ctx, db, coll); err != nil {
		t.Fatal(err)
	}
	keys := milvus.Keys{}
	for i := range rows {
		keys.Ints = append(keys.Ints, int64(i))
	}
	gen := milvus.RowGen{Schema: schema, Rand: milvustest.NewRand()}
	if _, err := c.Insert(ctx, db, coll, "", gen.Columns(rows, keys, func(i int) int64 { return int64(i) }), rows); err != nil {
		t.Fatal(err)
	}
}
