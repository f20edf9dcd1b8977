package milvus

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"sort"
	"strconv"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Inventory is everything a cluster holds, as its server describes it.
type Inventory struct {
	Version   string     `json:"version"`
	Databases []Database `json:"databases"`
}

// All yields every collection of every database, in order; a collection
// yielded may be changed in place.
func (inv *Inventory) All() iter.Seq[*Collection] {
	return func(yield func(*Collection) bool) {
		for d := range inv.Databases {
			for c := range inv.Databases[d].Collections {
				if !yield(&inv.Databases[d].Collections[c]) {
					return
				}
			}
		}
	}
}

// Database is one database and its collections.
type Database struct {
	Name        string       `json:"name"`
	Collections []Collection `json:"collections"`
}

// Collection is one collection with everything needed to recreate it.
type Collection struct {
	Database string                     `json:"database"`
	Name     string                     `json:"name"`
	Schema   *schemapb.CollectionSchema `json:"-"`
	Fields   []Field                    `json:"fields"`
	// DynamicField is the schema's flag: Milvus 2.3 lists no "$meta" field.
	DynamicField bool  `json:"dynamic_field"`
	ShardsNum    int32 `json:"shards_num"`
	// NumPartitions is the partition count of a partition-key collection.
	NumPartitions    int64             `json:"num_partitions,omitempty"`
	ConsistencyLevel string            `json:"consistency_level"`
	Properties       map[string]string `json:"properties,omitempty"`
	Partitions       []string          `json:"partitions"`
	Indexes          []Index           `json:"indexes"`
	Aliases          []string          `json:"aliases"`
	Loaded           bool              `json:"loaded"`
	Rows             int64             `json:"rows"`
}

// TTLProperty is the collection property that gives its rows a time to
// live, in seconds: Milvus removes a row that old when it compacts the
// row's segment.
const TTLProperty = "collection.ttl.seconds"

// Expires says whether the collection's rows have a time to live.
func (c *Collection) Expires() bool {
	ttl, err := strconv.ParseInt(c.Properties[TTLProperty], 10, 64)
	return err == nil && ttl > 0
}

// Field summarizes one field of a schema.
type Field struct {
	Name         string `json:"name"`
	Type         string `json:"type"`
	PrimaryKey   bool   `json:"primary_key,omitempty"`
	AutoID       bool   `json:"auto_id,omitempty"`
	PartitionKey bool   `json:"partition_key,omitempty"`
	Dynamic      bool   `json:"dynamic,omitempty"`
	Dim          int64  `json:"dim,omitempty"`
	MaxLength    int64  `json:"max_length,omitempty"`
	ElementType  string `json:"element_type,omitempty"`
	MaxCapacity  int64  `json:"max_capacity,omitempty"`
	Description  string `json:"description,omitempty"`
}

// Index is one index with its name and parameters.
type Index struct {
	Name   string            `json:"name"`
	Field  string            `json:"field"`
	Params map[string]string `json:"params"`
}

// PrimaryField returns the primary key field of the schema.
func (c *Collection) PrimaryField() *schemapb.FieldSchema {
	for _, f := range c.Schema.GetFields() {
		if f.GetIsPrimaryKey() {
			return f
		}
	}
	return nil
}

// Key is "database/collection".
func (c *Collection) Key() string { return c.Database + "/" + c.Name }

// Databases lists the database names.
func (c *Conn) Databases(ctx context.Context) ([]string, error) {
	r, err := c.Svc.ListDatabases(c.In(ctx, ""), &milvuspb.ListDatabasesRequest{})
	if err := Check("list databases", r.GetStatus(), err); err != nil {
		return nil, err
	}
	names := r.GetDbNames()
	sort.Strings(names)
	return names, nil
}

// CollectionNames lists a database's collections by name. It asks for
// names only, so servers that return no collection IDs list them too.
func (c *Conn) CollectionNames(ctx context.Context, db string) ([]string, error) {
	r, err := c.Svc.ShowCollections(c.In(ctx, db), &milvuspb.ShowCollectionsRequest{DbName: db})
	if err := Check("show collections", r.GetStatus(), err); err != nil {
		return nil, err
	}
	names := r.GetCollectionNames()
	sort.Strings(names)
	return names, nil
}

// Expiring describes every collection whose rows expire (TTLProperty):
// one call per collection to find them, the whole structure of those
// alone.
func (c *Conn) Expiring(ctx context.Context) ([]*Collection, error) {
	dbs, err := c.Databases(ctx)
	if err != nil {
		return nil, err
	}
	var out []*Collection
	for _, db := range dbs {
		names, err := c.CollectionNames(ctx, db)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			d, err := c.Svc.DescribeCollection(c.In(ctx, db), &milvuspb.DescribeCollectionRequest{DbName: db, CollectionName: name})
			if err := Check("describe collection "+db+"/"+name, d.GetStatus(), err); err != nil {
				return nil, err
			}
			if !(&Collection{Properties: KVMap(d.GetProperties())}).Expires() {
				continue
			}
			col, err := c.Structure(ctx, db, name)
			if err != nil {
				return nil, err
			}
			out = append(out, col)
		}
	}
	return out, nil
}

// Inventory reads every database and collection, with their row counts.
func (c *Conn) Inventory(ctx context.Context) (*Inventory, error) {
	return c.inventory(ctx, c.DescribeCollection)
}

// Outline is Inventory without the row counts: one strong read per
// collection less, for callers that compare structure (the schema watch
// every few seconds, verification, which counts on its own).
func (c *Conn) Outline(ctx context.Context) (*Inventory, error) {
	return c.inventory(ctx, c.Structure)
}

func (c *Conn) inventory(ctx context.Context, describe func(ctx context.Context, db, name string) (*Collection, error)) (*Inventory, error) {
	v, err := c.Version(ctx)
	if err != nil {
		return nil, err
	}
	inv := &Inventory{Version: v}
	dbs, err := c.Databases(ctx)
	if err != nil {
		return nil, err
	}
	for _, db := range dbs {
		names, err := c.CollectionNames(ctx, db)
		if err != nil {
			return nil, err
		}
		d := Database{Name: db, Collections: []Collection{}}
		for _, name := range names {
			col, err := describe(ctx, db, name)
			if err != nil {
				return nil, err
			}
			d.Collections = append(d.Collections, *col)
		}
		inv.Databases = append(inv.Databases, d)
	}
	return inv, nil
}

// DescribeCollection reads one collection: schema, settings, partitions,
// indexes, aliases, load state and row count.
func (c *Conn) DescribeCollection(ctx context.Context, db, name string) (*Collection, error) {
	col, err := c.Structure(ctx, db, name)
	if err != nil {
		return nil, err
	}
	if col.Rows, err = c.Count(ctx, col); err != nil {
		return nil, err
	}
	return col, nil
}

// PartitionNames lists a collection's partitions, sorted.
func (c *Conn) PartitionNames(ctx context.Context, db, coll string) ([]string, error) {
	r, err := c.Svc.ShowPartitions(c.In(ctx, db), &milvuspb.ShowPartitionsRequest{DbName: db, CollectionName: coll})
	if err := Check("show partitions "+coll, r.GetStatus(), err); err != nil {
		return nil, err
	}
	names := append([]string{}, r.GetPartitionNames()...)
	sort.Strings(names)
	return names, nil
}

// Structure is DescribeCollection without the row count, which on a
// loaded collection is a strong read: it waits for the server's next time
// tick, a few hundred milliseconds, for a figure the caller has no use for.
func (c *Conn) Structure(ctx context.Context, db, name string) (*Collection, error) {
	in := c.In(ctx, db)
	r, err := c.Svc.DescribeCollection(in, &milvuspb.DescribeCollectionRequest{DbName: db, CollectionName: name})
	if err := Check("describe collection "+db+"/"+name, r.GetStatus(), err); err != nil {
		return nil, err
	}
	col := &Collection{
		Database: db, Name: name, Schema: r.GetSchema(), ShardsNum: r.GetShardsNum(),
		ConsistencyLevel: r.GetConsistencyLevel().String(), Properties: KVMap(r.GetProperties()),
		Aliases: append([]string{}, r.GetAliases()...), DynamicField: r.GetSchema().GetEnableDynamicField(),
	}
	sort.Strings(col.Aliases)
	for _, f := range r.GetSchema().GetFields() {
		tp := KVMap(f.GetTypeParams())
		fl := Field{Name: f.GetName(), Type: f.GetDataType().String(), PrimaryKey: f.GetIsPrimaryKey(), AutoID: f.GetAutoID(),
			PartitionKey: f.GetIsPartitionKey(), Dynamic: f.GetIsDynamic()}
		fl.Dim, _ = strconv.ParseInt(tp["dim"], 10, 64)
		fl.MaxLength, _ = strconv.ParseInt(tp["max_length"], 10, 64)
		fl.MaxCapacity, _ = strconv.ParseInt(tp["max_capacity"], 10, 64)
		fl.Description = f.GetDescription()
		if f.GetDataType() == schemapb.DataType_Array {
			fl.ElementType = f.GetElementType().String()
		}
		col.Fields = append(col.Fields, fl)
	}
	if col.Partitions, err = c.PartitionNames(ctx, db, name); err != nil {
		return nil, err
	}
	if HasPartitionKeyField(col.Schema) {
		// The server creates a partition-key collection's partitions
		// itself; their count is what recreates them.
		col.NumPartitions = r.GetNumPartitions()
		if col.NumPartitions == 0 {
			col.NumPartitions = int64(len(col.Partitions))
		}
	}
	idx, err := c.Svc.DescribeIndex(in, &milvuspb.DescribeIndexRequest{DbName: db, CollectionName: name})
	if err := Check("describe index "+name, idx.GetStatus(), err); err != nil && !IsIndexMissing(idx.GetStatus()) {
		return nil, err
	}
	col.Indexes = []Index{}
	for _, d := range idx.GetIndexDescriptions() {
		col.Indexes = append(col.Indexes, Index{Name: d.GetIndexName(), Field: d.GetFieldName(), Params: KVMap(d.GetParams())})
	}
	sort.Slice(col.Indexes, func(i, j int) bool { return col.Indexes[i].Name < col.Indexes[j].Name })
	ls, err := c.Svc.GetLoadState(in, &milvuspb.GetLoadStateRequest{DbName: db, CollectionName: name})
	if err := Check("load state "+name, ls.GetStatus(), err); err != nil {
		return nil, err
	}
	col.Loaded = ls.GetState() == commonpb.LoadState_LoadStateLoaded
	return col, nil
}

// Count returns the live rows of a loaded collection (count(*)), or the
// server's statistics of an unloaded one.
func (c *Conn) Count(ctx context.Context, col *Collection) (int64, error) {
	if col.Loaded {
		return c.CountWhere(ctx, col.Database, col.Name, "")
	}
	return c.EstimatedRows(ctx, col.Database, col.Name)
}

// EstimatedRows is the server's statistics of a collection's rows, loaded
// or not: one call, no wait for a time tick, and approximate (deleted rows
// may still count, the newest writes may not yet).
func (c *Conn) EstimatedRows(ctx context.Context, db, name string) (int64, error) {
	r, err := c.Svc.GetCollectionStatistics(c.In(ctx, db), &milvuspb.GetCollectionStatisticsRequest{DbName: db, CollectionName: name})
	if err := Check("statistics "+db+"/"+name, r.GetStatus(), err); err != nil {
		return 0, err
	}
	n, _ := strconv.ParseInt(KVMap(r.GetStats())["row_count"], 10, 64)
	return n, nil
}

// CountWhere counts the rows expr selects ("" for all), duplicates of a
// key included, strongly consistent. The collection must be loaded.
func (c *Conn) CountWhere(ctx context.Context, db, coll, expr string) (int64, error) {
	return c.CountAt(ctx, db, coll, expr, 0)
}

// CountAt is CountWhere read at ts (see QueryAt).
func (c *Conn) CountAt(ctx context.Context, db, coll, expr string, ts uint64) (int64, error) {
	return c.CountIn(ctx, db, coll, expr, nil, ts)
}

// CountIn is CountAt of partitions parts (nil: all).
func (c *Conn) CountIn(ctx context.Context, db, coll, expr string, parts []string, ts uint64) (int64, error) {
	cols, err := c.QueryAt(ctx, db, coll, expr, []string{"count(*)"}, parts, 0, ts)
	if err != nil {
		return 0, err
	}
	for _, f := range cols {
		if d := f.GetScalars().GetLongData().GetData(); len(d) == 1 {
			return d[0], nil
		}
	}
	return 0, fmt.Errorf("count %s: no count in the answer", coll)
}

func IsIndexMissing(s *commonpb.Status) bool {
	return s.GetErrorCode() == commonpb.ErrorCode_IndexNotExist || s.GetCode() == 700
}

func KVMap(kvs []*commonpb.KeyValuePair) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = kv.GetValue()
	}
	return m
}

func HasPartitionKeyField(s *schemapb.CollectionSchema) bool {
	for _, f := range s.GetFields() {
		if f.GetIsPartitionKey() {
			return true
		}
	}
	return false
}

// UnloadedPartitions names the partitions of a loaded collection that are
// not loaded: an application may load only some. Queries see only the
// loaded ones.
func (c *Conn) UnloadedPartitions(ctx context.Context, db string, col *Collection) ([]string, error) {
	r, err := c.Svc.ShowPartitions(c.In(ctx, db), &milvuspb.ShowPartitionsRequest{DbName: db, CollectionName: col.Name, Type: milvuspb.ShowType_InMemory})
	if err := Check("loaded partitions of "+col.Name, r.GetStatus(), err); err != nil {
		return nil, err
	}
	var out []string
	for _, p := range col.Partitions {
		if !slices.Contains(r.GetPartitionNames(), p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// DatabaseProperties returns a database's properties (Milvus 2.4 and
// later keep some); a server that cannot describe a database has none.
func (c *Conn) DatabaseProperties(ctx context.Context, db string) (map[string]string, error) {
	r, err := c.Svc.DescribeDatabase(c.In(ctx, ""), &milvuspb.DescribeDatabaseRequest{DbName: db})
	if status.Code(err) == codes.Unimplemented {
		return nil, nil
	}
	if err := Check("describe database "+db, r.GetStatus(), err); err != nil {
		return nil, err
	}
	return KVMap(r.GetProperties()), nil
}
