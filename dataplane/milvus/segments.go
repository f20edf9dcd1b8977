package milvus

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
)

// Segment is a sealed, flushed segment of a collection: what the segment
// copy moves.
type Segment struct {
	ID          int64 `json:"id"`
	PartitionID int64 `json:"partition_id"`
	Rows        int64 `json:"rows"`
	// State is the server's, as listed.
	State commonpb.SegmentState `json:"-"`
}

// IDs are a collection's ID and its partitions' IDs, by name: the paths
// of its binlogs name them.
type IDs struct {
	Collection int64
	Partitions map[string]int64
}

// CollectionIDs reads a collection's and its partitions' IDs.
func (c *Conn) CollectionIDs(ctx context.Context, db, coll string) (IDs, error) {
	in := c.In(ctx, db)
	d, err := c.Svc.DescribeCollection(in, &milvuspb.DescribeCollectionRequest{DbName: db, CollectionName: coll})
	if err := Check("describe collection "+db+"/"+coll, d.GetStatus(), err); err != nil {
		return IDs{}, err
	}
	p, err := c.Svc.ShowPartitions(in, &milvuspb.ShowPartitionsRequest{DbName: db, CollectionName: coll})
	if err := Check("show partitions "+db+"/"+coll, p.GetStatus(), err); err != nil {
		return IDs{}, err
	}
	ids := IDs{Collection: d.GetCollectionID(), Partitions: map[string]int64{}}
	for i, name := range p.GetPartitionNames() {
		if i < len(p.GetPartitionIDs()) {
			ids.Partitions[name] = p.GetPartitionIDs()[i]
		}
	}
	return ids, nil
}

// FlushAndWait seals a collection's growing segments and waits until
// every segment sealed by then is flushed to storage, so that its binlogs
// hold every row acknowledged before the call.
func (c *Conn) FlushAndWait(ctx context.Context, db, coll string) error {
	in := c.In(ctx, db)
	r, err := c.Svc.Flush(in, &milvuspb.FlushRequest{DbName: db, CollectionNames: []string{coll}})
	if err := Check("flush "+db+"/"+coll, r.GetStatus(), err); err != nil {
		return err
	}
	var segs []int64
	for _, ids := range r.GetCollSegIDs() {
		segs = append(segs, ids.GetData()...)
	}
	for _, ids := range r.GetFlushCollSegIDs() {
		segs = append(segs, ids.GetData()...)
	}
	req := &milvuspb.GetFlushStateRequest{SegmentIDs: segs, FlushTs: r.GetCollFlushTs()[coll], DbName: db, CollectionName: coll}
	for {
		s, err := c.Svc.GetFlushState(in, req)
		if err := Check("flush state of "+db+"/"+coll, s.GetStatus(), err); err != nil {
			return err
		}
		if s.GetFlushed() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// PersistentSegments lists a collection's segments that have left the
// growing state: sealed, on their way to storage, or flushed. A flush
// counts a segment whose binlogs are saved as flushed while the server
// still marks it flushing, and a compaction's result starts out
// flushing while the segments it replaces are already dropped: a caller
// that needs every row in storage waits until all are Flushed.
func (c *Conn) PersistentSegments(ctx context.Context, db, coll string) ([]Segment, error) {
	r, err := c.Svc.GetPersistentSegmentInfo(c.In(ctx, db), &milvuspb.GetPersistentSegmentInfoRequest{DbName: db, CollectionName: coll})
	if err := Check("segments of "+db+"/"+coll, r.GetStatus(), err); err != nil {
		return nil, err
	}
	out := make([]Segment, 0, len(r.GetInfos()))
	for _, s := range r.GetInfos() {
		out = append(out, Segment{ID: s.GetSegmentID(), PartitionID: s.GetPartitionID(), Rows: s.GetNumRows(), State: s.GetState()})
	}
	return out, nil
}

// FlushedSegments lists a collection's flushed segments.
func (c *Conn) FlushedSegments(ctx context.Context, db, coll string) ([]Segment, error) {
	segs, err := c.PersistentSegments(ctx, db, coll)
	return slices.DeleteFunc(segs, func(s Segment) bool { return s.State != commonpb.SegmentState_Flushed }), err
}

// ImportBinlogs starts the import of binlogs laid out as a cluster writes
// them: insertDir holds a partition's segments' insert logs
// (insertDir/SEGMENT/FIELD/LOG), deltaDir their delete logs ("" for none).
// It returns the import's task IDs.
func (c *Conn) ImportBinlogs(ctx context.Context, db, coll, part, insertDir, deltaDir string) ([]int64, error) {
	r, err := uncancelled(ctx, c, func(ctx context.Context, svc milvuspb.MilvusServiceClient) (*milvuspb.ImportResponse, error) {
		return svc.Import(c.In(ctx, db), &milvuspb.ImportRequest{DbName: db, CollectionName: coll, PartitionName: part,
			Files: []string{insertDir, deltaDir}, Options: []*commonpb.KeyValuePair{{Key: "backup", Value: "true"}}})
	})
	if err := Check("import binlogs into "+db+"/"+coll+" partition "+part, r.GetStatus(), err); err != nil {
		return nil, err
	}
	return r.GetTasks(), nil
}

// ImportTask is a bulk import the server knows of.
type ImportTask struct {
	ID    int64
	Files string // the files it was given, comma-separated
	Ended bool
	Rows  int64 // imported, once it completed
	// Failed is the reason of a failed task ("" for one that did not).
	Failed string
}

// importTaskOf reads a task's state as the server reports it.
func importTaskOf(t *milvuspb.GetImportStateResponse) ImportTask {
	infos := KVMap(t.GetInfos())
	it := ImportTask{ID: t.GetId(), Files: infos["files"]}
	switch t.GetState() {
	case commonpb.ImportState_ImportCompleted:
		it.Ended, it.Rows = true, t.GetRowCount()
	case commonpb.ImportState_ImportFailed, commonpb.ImportState_ImportFailedAndCleaned:
		it.Ended, it.Failed = true, infos["failed_reason"]
		if it.Failed == "" {
			it.Failed = "failed"
		}
	}
	return it
}

// ImportState reads one import task.
func (c *Conn) ImportState(ctx context.Context, task int64) (ImportTask, error) {
	r, err := uncancelled(ctx, c, func(ctx context.Context, svc milvuspb.MilvusServiceClient) (*milvuspb.GetImportStateResponse, error) {
		return svc.GetImportState(c.In(ctx, ""), &milvuspb.GetImportStateRequest{Task: task})
	})
	if err := Check("import task "+strconv.FormatInt(task, 10), r.GetStatus(), err); err != nil {
		return ImportTask{}, err
	}
	it := importTaskOf(r)
	it.ID = task
	return it, nil
}

// ImportTasks lists the import tasks of a collection.
func (c *Conn) ImportTasks(ctx context.Context, db, coll string) ([]ImportTask, error) {
	r, err := uncancelled(ctx, c, func(ctx context.Context, svc milvuspb.MilvusServiceClient) (*milvuspb.ListImportTasksResponse, error) {
		return svc.ListImportTasks(c.In(ctx, db), &milvuspb.ListImportTasksRequest{DbName: db, CollectionName: coll})
	})
	if err := Check("list import tasks of "+db+"/"+coll, r.GetStatus(), err); err != nil {
		return nil, err
	}
	out := make([]ImportTask, 0, len(r.GetTasks()))
	for _, t := range r.GetTasks() {
		out = append(out, importTaskOf(t))
	}
	return out, nil
}
