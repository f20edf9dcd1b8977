package milvus

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// CreateDatabase creates db; an existing one is fine.
func (c *Conn) CreateDatabase(ctx context.Context, db string) error {
	if db == "" || db == "default" {
		return nil
	}
	dbs, err := c.Databases(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(dbs, db) {
		return nil
	}
	r, err := c.Svc.CreateDatabase(c.In(ctx, ""), &milvuspb.CreateDatabaseRequest{DbName: db})
	if err = Check("create database "+db, r, err); err == nil {
		return nil
	}
	// Another caller may have made it meanwhile (collections of one
	// database are made in parallel).
	if dbs, lerr := c.Databases(ctx); lerr == nil && slices.Contains(dbs, db) {
		return nil
	}
	return err
}

// HasCollection reports whether db holds a collection called name.
func (c *Conn) HasCollection(ctx context.Context, db, name string) (bool, error) {
	r, err := c.Svc.HasCollection(c.In(ctx, db), &milvuspb.HasCollectionRequest{DbName: db, CollectionName: name})
	if err := Check("has collection "+name, r.GetStatus(), err); err != nil {
		return false, err
	}
	return r.GetValue(), nil
}

// CollectionSettings are a collection's settings besides its schema, as
// DescribeCollection reports them.
type CollectionSettings struct {
	Shards     int32
	Level      commonpb.ConsistencyLevel
	Properties map[string]string
	// Partitions is the partition count of a collection with a partition
	// key (0: the server's default).
	Partitions int64
}

// CreateCollection creates a collection from a schema as the source
// described it; an existing one is left as it is.
func (c *Conn) CreateCollection(ctx context.Context, db string, schema *schemapb.CollectionSchema, set CollectionSettings) error {
	if ok, err := c.HasCollection(ctx, db, schema.GetName()); err != nil || ok {
		return err
	}
	data, err := proto.Marshal(schema)
	if err != nil {
		return fmt.Errorf("encode schema of %s: %w", schema.GetName(), err)
	}
	req := &milvuspb.CreateCollectionRequest{DbName: db, CollectionName: schema.GetName(), Schema: data,
		ShardsNum: set.Shards, ConsistencyLevel: set.Level, Properties: KVPairs(set.Properties)}
	if HasPartitionKeyField(schema) {
		req.NumPartitions = set.Partitions
	}
	r, err := c.Svc.CreateCollection(c.In(ctx, db), req)
	return Check("create collection "+db+"/"+schema.GetName(), r, err)
}

// CreatePartition creates a partition; an existing one is fine.
func (c *Conn) CreatePartition(ctx context.Context, db, coll, part string) error {
	h, err := c.Svc.HasPartition(c.In(ctx, db), &milvuspb.HasPartitionRequest{DbName: db, CollectionName: coll, PartitionName: part})
	if err := Check("has partition "+part, h.GetStatus(), err); err != nil || h.GetValue() {
		return err
	}
	r, err := c.Svc.CreatePartition(c.In(ctx, db), &milvuspb.CreatePartitionRequest{DbName: db, CollectionName: coll, PartitionName: part})
	return Check("create partition "+coll+"/"+part, r, err)
}

// CreateIndex creates a named index with its parameters as DescribeIndex
// returned them; an existing index of that name is fine.
func (c *Conn) CreateIndex(ctx context.Context, db, coll string, idx Index) error {
	d, err := c.Svc.DescribeIndex(c.In(ctx, db), &milvuspb.DescribeIndexRequest{DbName: db, CollectionName: coll, IndexName: idx.Name})
	if err == nil && d.GetStatus().GetErrorCode() == commonpb.ErrorCode_Success && len(d.GetIndexDescriptions()) > 0 {
		return nil
	}
	params := map[string]string{}
	for k, v := range idx.Params {
		// Reported by DescribeIndex but not accepted back.
		if k != "mmap.enabled" || v != "" {
			params[k] = v
		}
	}
	r, err := c.Svc.CreateIndex(c.In(ctx, db), &milvuspb.CreateIndexRequest{DbName: db, CollectionName: coll,
		FieldName: idx.Field, IndexName: idx.Name, ExtraParams: KVPairs(params)})
	return Check("create index "+coll+"/"+idx.Name, r, err)
}

// CreateAlias points alias at coll; an alias already there is fine.
func (c *Conn) CreateAlias(ctx context.Context, db, coll, alias string) error {
	col, err := c.Svc.DescribeCollection(c.In(ctx, db), &milvuspb.DescribeCollectionRequest{DbName: db, CollectionName: coll})
	if err == nil {
		for _, a := range col.GetAliases() {
			if a == alias {
				return nil
			}
		}
	}
	r, err := c.Svc.CreateAlias(c.In(ctx, db), &milvuspb.CreateAliasRequest{DbName: db, CollectionName: coll, Alias: alias})
	return Check("create alias "+alias, r, err)
}

// Load loads a collection and waits until it is loaded.
func (c *Conn) Load(ctx context.Context, db, coll string) error {
	if err := c.StartLoad(ctx, db, coll); err != nil {
		return err
	}
	return c.waitLoaded(ctx, db, coll, nil)
}

// WaitLoaded waits until a collection whose load was asked for is loaded.
func (c *Conn) WaitLoaded(ctx context.Context, db, coll string) error {
	return c.waitLoaded(ctx, db, coll, nil)
}

// waitLoaded waits until a collection, or those of its partitions that
// parts names, is loaded.
func (c *Conn) waitLoaded(ctx context.Context, db, coll string, parts []string) error {
	for {
		s, err := c.Svc.GetLoadState(c.In(ctx, db), &milvuspb.GetLoadStateRequest{DbName: db, CollectionName: coll, PartitionNames: parts})
		if err := Check("load state "+coll, s.GetStatus(), err); err != nil {
			return err
		}
		if s.GetState() == commonpb.LoadState_LoadStateLoaded {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Import starts a bulk import of files the server can read and returns its
// task IDs.
func (c *Conn) Import(ctx context.Context, db, coll string, files []string) ([]int64, error) {
	r, err := uncancelled(ctx, c, func(ctx context.Context, svc milvuspb.MilvusServiceClient) (*milvuspb.ImportResponse, error) {
		return svc.Import(c.In(ctx, db), &milvuspb.ImportRequest{DbName: db, CollectionName: coll, Files: files})
	})
	if err := Check("import into "+coll, r.GetStatus(), err); err != nil {
		return nil, err
	}
	return r.GetTasks(), nil
}

// RunningImports names the bulk imports of every database that have not
// ended yet.
func (c *Conn) RunningImports(ctx context.Context) ([]string, error) {
	dbs, err := c.Databases(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[int64]bool{}
	var out []string
	for _, db := range dbs {
		r, err := uncancelled(ctx, c, func(ctx context.Context, svc milvuspb.MilvusServiceClient) (*milvuspb.ListImportTasksResponse, error) {
			return svc.ListImportTasks(c.In(ctx, db), &milvuspb.ListImportTasksRequest{DbName: db})
		})
		if err := Check("list import tasks", r.GetStatus(), err); err != nil {
			return nil, err
		}
		for _, t := range r.GetTasks() {
			if importTaskOf(t).Ended || seen[t.GetId()] {
				continue
			}
			seen[t.GetId()] = true
			out = append(out, fmt.Sprintf("import task %d into collection ID %d (%s)", t.GetId(), t.GetCollectionId(),
				strings.TrimPrefix(t.GetState().String(), "Import")))
		}
	}
	return out, nil
}

// StartLoad asks for a collection to be loaded, without waiting for it.
func (c *Conn) StartLoad(ctx context.Context, db, coll string) error {
	return c.startLoad(ctx, db, coll, nil, Replicas{})
}

// Release releases a loaded collection.
func (c *Conn) Release(ctx context.Context, db, coll string) error {
	r, err := c.Svc.ReleaseCollection(c.In(ctx, db), &milvuspb.ReleaseCollectionRequest{DbName: db, CollectionName: coll})
	return Check("release "+coll, r, err)
}

// Insert writes columns and returns the server's answer (keys, timestamp).
func (c *Conn) Insert(ctx context.Context, db, coll, part string, cols []*schemapb.FieldData, rows int) (*milvuspb.MutationResult, error) {
	r, err := c.Svc.Insert(c.In(ctx, db), &milvuspb.InsertRequest{DbName: db, CollectionName: coll, PartitionName: part, FieldsData: cols, NumRows: uint32(rows)})
	return r, Check("insert into "+coll, r.GetStatus(), err)
}

// Upsert writes columns, replacing rows with the same primary keys.
func (c *Conn) Upsert(ctx context.Context, db, coll, part string, cols []*schemapb.FieldData, rows int) (*milvuspb.MutationResult, error) {
	r, err := c.Svc.Upsert(c.In(ctx, db), &milvuspb.UpsertRequest{DbName: db, CollectionName: coll, PartitionName: part, FieldsData: cols, NumRows: uint32(rows)})
	return r, Check("upsert into "+coll, r.GetStatus(), err)
}

// Delete removes the rows an expression selects.
func (c *Conn) Delete(ctx context.Context, db, coll, part, expr string) (*milvuspb.MutationResult, error) {
	r, err := c.Svc.Delete(c.In(ctx, db), &milvuspb.DeleteRequest{DbName: db, CollectionName: coll, PartitionName: part, Expr: expr})
	return r, Check("delete from "+coll, r.GetStatus(), err)
}

// Query returns the columns of the rows expr selects, strongly consistent.
func (c *Conn) Query(ctx context.Context, db, coll, expr string, fields []string, parts []string, limit int64) ([]*schemapb.FieldData, error) {
	return c.QueryAt(ctx, db, coll, expr, fields, parts, limit, 0)
}

// QueryAt is Query that sees at least every write the server stamped up
// to ts (a timestamp from ReadTimestamp); 0 reads strongly consistent.
// A strong read waits for the server's next time tick (up to a few hundred
// milliseconds); a read at a past timestamp is answered at once.
func (c *Conn) QueryAt(ctx context.Context, db, coll, expr string, fields []string, parts []string, limit int64, ts uint64) ([]*schemapb.FieldData, error) {
	params := []*commonpb.KeyValuePair{}
	if limit > 0 {
		params = append(params, &commonpb.KeyValuePair{Key: "limit", Value: fmt.Sprint(limit)})
	}
	req := &milvuspb.QueryRequest{DbName: db, CollectionName: coll, Expr: expr, OutputFields: fields,
		PartitionNames: parts, QueryParams: params, ConsistencyLevel: commonpb.ConsistencyLevel_Strong}
	if ts != 0 {
		req.ConsistencyLevel, req.GuaranteeTimestamp = commonpb.ConsistencyLevel_Customized, ts
	}
	r, err := c.Svc.Query(c.In(ctx, db), req)
	if err := Check("query "+coll, r.GetStatus(), err); err != nil {
		return nil, err
	}
	return r.GetFieldsData(), nil
}

// ReadTimestamp returns a timestamp of the server's clock taken now: every
// write the server acknowledged before this call is stamped earlier. It
// is allocated, as Milvus 2.3 and later give one out. A flush of the
// collection gives one too, but seals its growing segments and hands them
// to the query node while the applications write: a source migrated under
// chaos tests returned rows whose acknowledged deletes came in that
// window (Milvus 2.3 has known lost-delete faults around handoff), and
// the copy flushed every collection it read. The flush stays for a server
// that allocates none.
func (c *Conn) ReadTimestamp(ctx context.Context, db, coll string) (uint64, error) {
	if ts, err := c.AllocTimestamp(ctx); err == nil {
		return ts, nil
	}
	r, err := c.Svc.Flush(c.In(ctx, db), &milvuspb.FlushRequest{DbName: db, CollectionNames: []string{coll}})
	if err := Check("flush "+db+"/"+coll, r.GetStatus(), err); err != nil {
		return 0, err
	}
	ts := r.GetCollFlushTs()[coll]
	if ts == 0 {
		return 0, fmt.Errorf("flush %s/%s: the server gave no timestamp", db, coll)
	}
	return ts, nil
}

// AllocTimestamp is the server's clock now, from the allocator that
// stamps its writes (Milvus 2.3 and later): every write acknowledged
// before the call is stamped earlier. A read at it is a strong read; the
// reads after the first at the same timestamp are answered at once, not
// each at the server's next time tick.
func (c *Conn) AllocTimestamp(ctx context.Context) (uint64, error) {
	a, err := c.Svc.AllocTimestamp(c.In(ctx, ""), &milvuspb.AllocTimestampRequest{})
	if err := Check("allocate a timestamp", a.GetStatus(), err); err != nil {
		return 0, err
	}
	if a.GetTimestamp() == 0 {
		return 0, fmt.Errorf("allocate a timestamp: the server gave none")
	}
	return a.GetTimestamp(), nil
}

func KVPairs(m map[string]string) []*commonpb.KeyValuePair {
	out := make([]*commonpb.KeyValuePair, 0, len(m))
	for k, v := range m {
		out = append(out, &commonpb.KeyValuePair{Key: k, Value: v})
	}
	return out
}

// DropEverything drops every collection and every database but "default":
// for demos and tests that start from an empty cluster.
func (c *Conn) DropEverything(ctx context.Context) error {
	dbs, err := c.Databases(ctx)
	if err != nil {
		return err
	}
	for _, db := range dbs {
		names, err := c.CollectionNames(ctx, db)
		if err != nil {
			return err
		}
		for _, n := range names {
			r, err := c.Svc.DropCollection(c.In(ctx, db), &milvuspb.DropCollectionRequest{DbName: db, CollectionName: n})
			if err := Check("drop collection "+db+"/"+n, r, err); err != nil {
				return err
			}
		}
		if db != "default" {
			r, err := c.Svc.DropDatabase(c.In(ctx, ""), &milvuspb.DropDatabaseRequest{DbName: db})
			if err := Check("drop database "+db, r, err); err != nil {
				return err
			}
		}
	}
	return nil
}
