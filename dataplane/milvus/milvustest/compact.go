package milvustest

import (
	"context"
	"errors"
	"io/fs"
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

// CompactAndCollect compacts a collection of the server c and removes
// the binlogs of the segments the compaction dropped, as the server's
// garbage collection does an hour or more later, from mirror: a copy of
// the server's local storage (root) that the code under test reads (see
// Mirror). It returns the IDs of the segments dropped.
//
// The server's own storage is left alone: Milvus 2.3's garbage collection
// lists its files, then reads each one's time, and a file removed in
// between kills the whole server ("index out of range" in
// garbageCollector.scan), as it did in two test runs.
func CompactAndCollect(t testing.TB, c *milvus.Conn, root, mirror, db, coll string) []int64 {
	t.Helper()
	ctx := context.Background()
	before, err := c.FlushedSegments(ctx, db, coll)
	if err != nil {
		t.Fatal(err)
	}
	ids := Compact(t, c, db, coll)
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
	Mirror(t, root, mirror) // the compacted segment
	for _, s := range before {
		if !slices.Contains(dropped, s.ID) {
			continue
		}
		for _, kind := range []string{"insert_log", "delta_log", "stats_log"} {
			dir := filepath.Join(mirror, kind, strconv.FormatInt(ids.Collection, 10), strconv.FormatInt(s.PartitionID, 10), strconv.FormatInt(s.ID, 10))
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dropped
}

// Compact compacts a collection of the server c, as its own compactions
// do, and waits until the compaction completed; it returns the
// collection's IDs.
func Compact(t testing.TB, c *milvus.Conn, db, coll string) milvus.IDs {
	t.Helper()
	ctx := context.Background()
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
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("the compaction of %s/%s did not complete", db, coll)
		}
	}
}

// Mirror gives mirror every binlog of the server's local storage root it
// lacks, hard-linked where it can be (copied across file systems): the
// server's own files are never touched. A file the server removes
// meanwhile is passed by.
func Mirror(t testing.TB, root, mirror string) {
	t.Helper()
	for _, kind := range []string{"insert_log", "delta_log", "stats_log"} {
		err := filepath.WalkDir(filepath.Join(root, kind), func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			to := filepath.Join(mirror, rel)
			if _, err := os.Stat(to); err == nil {
				return nil
			}
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				return err
			}
			if os.Link(path, to) == nil {
				return nil
			}
			data, err := os.ReadFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			return os.WriteFile(to, data, 0o644)
		})
		if err != nil {
			t.Fatalf("mirror %s: %v", root, err)
		}
	}
}
