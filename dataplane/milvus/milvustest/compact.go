package milvustest

import (
	"context"
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
		if slices.Contains(after, s.ID) {
			continue
		}
		dropped = append(dropped, s.ID)
		for _, kind := range []string{"insert_log", "delta_log", "stats_log"} {
			dir := filepath.Join(storage, kind, strconv.FormatInt(ids.Collection, 10), strconv.FormatInt(s.PartitionID, 10), strconv.FormatInt(s.ID, 10))
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(dropped) == 0 {
		t.Fatalf("the compaction of %s/%s dropped no segment (%d before, %v after)", db, coll, len(before), after)
	}
	return dropped
}
