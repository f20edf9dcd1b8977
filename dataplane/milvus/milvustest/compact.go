package milvustest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// CompactAndCollect compacts a collection of the server c (kept under
// storage, its local storage) and removes the binlogs of the segments the
// compaction dropped, as the server's garbage collection does an hour or
// more later. It returns the IDs of the segments dropped.
//
// The server's own collection waits until nothing reads the dropped
// segments any more: the query nodes have handed them off to the
// compacted one, and the index of every live segment is built. Removing
// them sooner has Milvus load or index files that are gone: the likeliest
// cause of a test run in which the source server died while this test
// ran.
func CompactAndCollect(t testing.TB, c *milvus.Conn, storage, db, coll string) []int64 {
	t.Helper()
	ctx := context.Background()
	before, err := c.FlushedSegments(ctx, db, coll)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := c.CollectionIDs(ctx, db, coll)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Svc.ManualCompaction(c.In(ctx, db), &milvuspb.ManualCompactionRequest{CollectionID: ids.Collection})
	if err := milvus.Check("compact "+coll, r.GetStatus(), err); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		s, err := c.Svc.GetCompactionState(c.In(ctx, db), &milvuspb.GetCompactionStateRequest{CompactionID: r.GetCompactionID()})
		if err := milvus.Check("compaction state", s.GetStatus(), err); err != nil {
			t.Fatal(err)
		}
		if s.GetState() == commonpb.CompactionState_Completed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the compaction of %s/%s did not complete", db, coll)
		}
	}
	var after []int64
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		segs, err := c.FlushedSegments(ctx, db, coll)
		if err != nil {
			t.Fatal(err)
		}
		after = after[:0]
		for _, s := range segs {
			after = append(after, s.ID)
		}
		if len(after) > 0 && len(after) < len(before) || time.Now().After(deadline) {
			break
		}
	}
	var dropped []int64
	for _, s := range before {
		if !slices.Contains(after, s.ID) {
			dropped = append(dropped, s.ID)
		}
	}
	if len(dropped) == 0 {
		t.Fatalf("the compaction of %s/%s dropped no segment (%d before, %v after)", db, coll, len(before), after)
	}
	waitUnread(t, c, db, coll, dropped)
	for _, s := range before {
		if !slices.Contains(dropped, s.ID) {
			continue
		}
		for _, kind := range []string{"insert_log", "delta_log", "stats_log"} {
			dir := filepath.Join(storage, kind, strconv.FormatInt(ids.Collection, 10), strconv.FormatInt(s.PartitionID, 10), strconv.FormatInt(s.ID, 10))
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dropped
}

// waitUnread waits until no query node of c holds a segment of dropped
// (when the collection is loaded) and every index of the collection is
// built on every live segment.
func waitUnread(t testing.TB, c *milvus.Conn, db, coll string, dropped []int64) {
	t.Helper()
	ctx := c.In(context.Background(), db)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		held, err := heldByQueryNodes(ctx, c, db, coll, dropped)
		if err != nil {
			t.Fatal(err)
		}
		pending, err := unbuiltIndexes(ctx, c, db, coll)
		if err != nil {
			t.Fatal(err)
		}
		if len(held) == 0 && pending == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s: the dropped segments are still read (held by query nodes: %v; indexes not built: %s)", db, coll, held, pending)
		}
	}
}

func heldByQueryNodes(ctx context.Context, c *milvus.Conn, db, coll string, dropped []int64) ([]int64, error) {
	loaded, err := c.Svc.GetLoadState(ctx, &milvuspb.GetLoadStateRequest{DbName: db, CollectionName: coll})
	if err := milvus.Check("load state of "+coll, loaded.GetStatus(), err); err != nil {
		return nil, err
	}
	if loaded.GetState() == commonpb.LoadState_LoadStateNotLoad {
		return nil, nil
	}
	r, err := c.Svc.GetQuerySegmentInfo(ctx, &milvuspb.GetQuerySegmentInfoRequest{DbName: db, CollectionName: coll})
	if err := milvus.Check("query segments of "+coll, r.GetStatus(), err); err != nil {
		return nil, err
	}
	var held []int64
	for _, s := range r.GetInfos() {
		if slices.Contains(dropped, s.GetSegmentID()) {
			held = append(held, s.GetSegmentID())
		}
	}
	return held, nil
}

// unbuiltIndexes names the indexes of coll not yet built on every row,
// or "" (also when the collection has no index).
func unbuiltIndexes(ctx context.Context, c *milvus.Conn, db, coll string) (string, error) {
	r, err := c.Svc.DescribeIndex(ctx, &milvuspb.DescribeIndexRequest{DbName: db, CollectionName: coll})
	if r.GetStatus().GetErrorCode() == commonpb.ErrorCode_IndexNotExist {
		return "", nil
	}
	if err := milvus.Check("indexes of "+coll, r.GetStatus(), err); err != nil {
		return "", err
	}
	for _, idx := range r.GetIndexDescriptions() {
		if idx.GetState() != commonpb.IndexState_Finished || idx.GetPendingIndexRows() > 0 || idx.GetIndexedRows() < idx.GetTotalRows() {
			return fmt.Sprintf("%s (%s, %d of %d rows)", idx.GetIndexName(), idx.GetState(), idx.GetIndexedRows(), idx.GetTotalRows()), nil
		}
	}
	return "", nil
}
