package segcopy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"golang.org/x/sync/errgroup"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// Partition is one partition of a collection and its flushed segments.
type Partition struct {
	Name     string
	ID       int64
	Segments []milvus.Segment
}

// Listing is what a collection's segment copy moves: its IDs (they name
// its binlogs' paths) and its partitions' flushed segments.
type Listing struct {
	Collection int64
	Partitions []Partition
}

// List flushes a source collection and lists its flushed segments by
// partition. Made after the capture is armed, the flush puts every write
// acknowledged before it into the segments listed; the writes after it are
// journaled, and replayed on top.
func List(ctx context.Context, src *milvus.Conn, db, coll string) (Listing, error) {
	if err := src.FlushAndWait(ctx, db, coll); err != nil {
		return Listing{}, err
	}
	ids, err := src.CollectionIDs(ctx, db, coll)
	if err != nil {
		return Listing{}, err
	}
	segs, err := settledSegments(ctx, src, db, coll, settleWait)
	if err != nil {
		return Listing{}, err
	}
	l := Listing{Collection: ids.Collection}
	for name, id := range ids.Partitions {
		p := Partition{Name: name, ID: id}
		for _, s := range segs {
			if s.PartitionID == id {
				p.Segments = append(p.Segments, s)
			}
		}
		l.Partitions = append(l.Partitions, p)
	}
	return l, nil
}

// settleWait bounds List's wait for a collection's segments to be
// flushed. Each takes moments once its binlogs are saved; one that takes
// longer fails the listing, which the copy tries again.
const settleWait = 2 * time.Minute

// settledSegments lists a collection's segments once every one is
// flushed. The flush's wait ends when the binlogs are saved, while the
// server may still list their segment as flushing; and a compaction's
// result is listed flushing after the segments it replaces are dropped.
// A listing taken then would lack those rows, and the copy would leave
// them out without a trace.
func settledSegments(ctx context.Context, src *milvus.Conn, db, coll string, wait time.Duration) ([]milvus.Segment, error) {
	deadline := time.Now().Add(wait)
	for {
		segs, err := src.PersistentSegments(ctx, db, coll)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(segs, func(s milvus.Segment) bool { return s.State != commonpb.SegmentState_Flushed })
		if i < 0 {
			return segs, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s/%s: segment %d is still %s after %s: its rows are not all in storage yet "+
				"(a source that does not finish flushing it can be copied with options.copy_mode rows)", db, coll, segs[i].ID, segs[i].State, wait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ErrSegmentGone is a listed segment whose binlogs are no longer in the
// source's storage: compacted into another since it was listed.
var ErrSegmentGone = errors.New("a listed segment's binlogs are gone from the source's storage (compacted since it was listed)")

// Copier copies segments' binlogs from a source's storage into a target's
// and has the target import them.
type Copier struct {
	Source, Target Storage
	// Stage is the key prefix on the target's storage under which the
	// copies land, one per migration.
	Stage string
	// Files copied at a time (default 4).
	Files int
	// ServerSide and Streamed count the files the target's storage copied
	// from the source's by itself, and those zdm read and wrote.
	ServerSide, Streamed atomic.Int64
}

// serverCopier is a storage that can copy an object from another without
// its bytes passing through zdm (S3 buckets of one endpoint).
type serverCopier interface {
	CopyFrom(ctx context.Context, from Storage, fromKey string, size int64, key string) (bool, error)
}

// binlogKinds are the logs a segment's import reads: its rows and the
// deletes applied to them.
var binlogKinds = []string{"insert_log", "delta_log"}

func segmentPrefix(kind string, coll, part, seg int64) string {
	return fmt.Sprintf("%s/%d/%d/%d/", kind, coll, part, seg)
}

// HoldsSegment reports whether st holds insert logs of a segment, where
// the cluster writing it lays them out.
func HoldsSegment(ctx context.Context, st Storage, coll, part, seg int64) (bool, error) {
	objs, err := st.List(ctx, segmentPrefix("insert_log", coll, part, seg))
	return len(objs) > 0, err
}

// staged is where a partition's logs of a kind land in the stage.
func (c *Copier) staged(kind string, coll, part int64) string {
	return fmt.Sprintf("%s/%s/%d/%d", c.Stage, kind, coll, part)
}

// CopySegment copies one segment's insert and delete logs to the stage
// and returns the bytes copied. A segment with no insert log is
// ErrSegmentGone.
func (c *Copier) CopySegment(ctx context.Context, coll, part int64, seg milvus.Segment) (int64, error) {
	var objs []Object
	for _, kind := range binlogKinds {
		o, err := c.Source.List(ctx, segmentPrefix(kind, coll, part, seg.ID))
		if err != nil {
			return 0, err
		}
		if kind == "insert_log" && len(o) == 0 {
			return 0, fmt.Errorf("segment %d: %w", seg.ID, ErrSegmentGone)
		}
		objs = append(objs, o...)
	}
	files := c.Files
	if files <= 0 {
		files = 4
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(files)
	var bytes int64
	for _, o := range objs {
		bytes += o.Size
		g.Go(func() error {
			if sc, ok := c.Target.(serverCopier); ok {
				copied, err := sc.CopyFrom(gctx, c.Source, o.Key, o.Size, c.Stage+"/"+o.Key)
				if errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("segment %d: %w", seg.ID, ErrSegmentGone)
				}
				if err != nil {
					return fmt.Errorf("segment %d: %w", seg.ID, err)
				}
				if copied {
					c.ServerSide.Add(1)
					return nil
				}
			}
			c.Streamed.Add(1)
			r, err := c.Source.Open(gctx, o.Key)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("segment %d: %w", seg.ID, ErrSegmentGone)
			}
			if err != nil {
				return fmt.Errorf("segment %d: %w", seg.ID, err)
			}
			defer r.Close()
			return c.Target.Put(gctx, c.Stage+"/"+o.Key, r, o.Size)
		})
	}
	return bytes, g.Wait()
}

// Import has the target import one partition's staged segments into
// db/coll and waits for it; it returns the rows imported. When mayExist,
// an import of the same files the target already has, running or done (a
// zdmd killed before it recorded it), is waited for, not started again: a
// second import would write every row twice. Listing the target's imports
// is skipped otherwise: the list grows with every import the target ran,
// and a zdmd killed while a Milvus 2.3 server answers it kills that
// server (see milvus/uncancelled.go).
func (c *Copier) Import(ctx context.Context, dst *milvus.Conn, db, coll, part string, srcColl, srcPart int64, mayExist bool) (int64, error) {
	insertDir := c.Target.Path(c.staged("insert_log", srcColl, srcPart))
	deltaDir := ""
	if d, err := c.Target.List(ctx, c.staged("delta_log", srcColl, srcPart)+"/"); err != nil {
		return 0, err
	} else if len(d) > 0 {
		deltaDir = c.Target.Path(c.staged("delta_log", srcColl, srcPart))
	}
	var tasks []int64
	if mayExist {
		known, err := dst.ImportTasks(ctx, db, coll)
		if err != nil {
			return 0, err
		}
		for _, t := range known {
			if t.Failed == "" && slices.Contains(strings.Split(t.Files, ","), insertDir) {
				tasks = append(tasks, t.ID)
			}
		}
	}
	var err error
	if len(tasks) == 0 {
		if tasks, err = dst.ImportBinlogs(ctx, db, coll, part, insertDir, deltaDir); err != nil {
			return 0, err
		}
	}
	var rows int64
	for _, task := range tasks {
		for {
			t, err := dst.ImportState(ctx, task)
			if err != nil {
				return rows, err
			}
			if t.Failed != "" {
				return rows, fmt.Errorf("import task %d failed: %s", task, t.Failed)
			}
			if t.Ended {
				rows += t.Rows
				break
			}
			select {
			case <-ctx.Done():
				return rows, ctx.Err()
			case <-time.After(importPoll):
			}
		}
	}
	return rows, nil
}

// MissingStaged returns those of segs, a partition's segments, whose
// insert logs are not on the stage: Milvus imports what a stage holds
// and says it succeeded, so an import of a stage that lost a segment's
// logs would leave its rows off the target.
func (c *Copier) MissingStaged(ctx context.Context, coll, part int64, segs []int64) ([]int64, error) {
	prefix := c.staged("insert_log", coll, part) + "/"
	objs, err := c.Target.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	have := map[int64]bool{}
	for _, o := range objs {
		seg, _, _ := strings.Cut(strings.TrimPrefix(o.Key, prefix), "/")
		if id, err := strconv.ParseInt(seg, 10, 64); err == nil {
			have[id] = true
		}
	}
	var missing []int64
	for _, s := range segs {
		if !have[s] {
			missing = append(missing, s)
		}
	}
	return missing, nil
}

// importPoll paces the reads of an import task's state: each is one small
// request, and a partition's copy ends up to one poll later than its
// import did, which adds up over a source of many small partitions.
const importPoll = 100 * time.Millisecond

// Unstage removes a partition's staged logs: once imported, the target
// wrote segments of its own.
func (c *Copier) Unstage(ctx context.Context, coll, part int64) error {
	for _, kind := range binlogKinds {
		if err := c.Target.Remove(ctx, c.staged(kind, coll, part)); err != nil {
			return err
		}
	}
	return nil
}
