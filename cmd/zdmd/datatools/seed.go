package datatools

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// Shape is what `zdmd seed` creates.
type Shape struct {
	// Databases are named PREFIXdb0.. ; a single database of "default" is
	// used when DefaultDB is set.
	Databases   int
	DefaultDB   bool
	Collections int // per database
	Partitions  int // per collection, besides _default
	Rows        int64
	Dim         int
	PKType      string // "int64" or "varchar"
	AutoID      bool
	Dynamic     bool
	Index       string // IVF_FLAT, HNSW, FLAT or "none"
	Aliases     bool
	Load        bool
	Shards      int32
	Seed        uint64
	Prefix      string
}

// Validate names the first setting that is out of range, by its flag.
func (s Shape) Validate() error {
	switch {
	case s.Databases < 1 || s.Databases > 64:
		return fmt.Errorf("--databases must be from 1 to 64")
	case s.Collections < 0 || s.Collections > 256:
		return fmt.Errorf("--collections must be from 0 to 256")
	case s.Partitions < 0 || s.Partitions > 64:
		return fmt.Errorf("--partitions must be from 0 to 64")
	case s.Rows < 0:
		return fmt.Errorf("--rows must not be negative")
	case s.Dim < 2 || s.Dim > 32768:
		return fmt.Errorf("--dim must be from 2 to 32768")
	case s.PKType != "int64" && s.PKType != "varchar":
		return fmt.Errorf(`--pk must be "int64" or "varchar"`)
	case s.AutoID && s.PKType != "int64":
		return fmt.Errorf("--auto-id needs --pk int64")
	case s.Index != "IVF_FLAT" && s.Index != "HNSW" && s.Index != "FLAT" && s.Index != "none":
		return fmt.Errorf("--index must be IVF_FLAT, HNSW, FLAT or none")
	case s.Shards < 1 || s.Shards > 16:
		return fmt.Errorf("--shards must be from 1 to 16")
	}
	return nil
}

// DatabaseNames are the databases the shape fills.
func (s Shape) DatabaseNames() []string {
	if s.DefaultDB {
		return []string{"default"}
	}
	out := make([]string, s.Databases)
	for i := range out {
		out[i] = fmt.Sprintf("%sdb%d", s.Prefix, i)
	}
	return out
}

// CollectionName is the name of collection j.
func (s Shape) CollectionName(j int) string { return fmt.Sprintf("%sc%d", s.Prefix, j) }

// Schema is the schema of every seeded collection: a key, a version
// number "n", a text "s", a vector "v", and the dynamic field if asked.
func (s Shape) Schema(name string) *schemapb.CollectionSchema {
	pk := &schemapb.FieldSchema{FieldID: 100, Name: "id", IsPrimaryKey: true, AutoID: s.AutoID, DataType: schemapb.DataType_Int64}
	if s.PKType == "varchar" {
		pk.DataType, pk.TypeParams = schemapb.DataType_VarChar, []*commonpb.KeyValuePair{{Key: "max_length", Value: "64"}}
	}
	return &schemapb.CollectionSchema{Name: name, EnableDynamicField: s.Dynamic, Fields: []*schemapb.FieldSchema{
		pk,
		{FieldID: 101, Name: "n", DataType: schemapb.DataType_Int64},
		{FieldID: 102, Name: "s", DataType: schemapb.DataType_VarChar, TypeParams: []*commonpb.KeyValuePair{{Key: "max_length", Value: "128"}}},
		{FieldID: 103, Name: "v", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: strconv.Itoa(s.Dim)}}},
	}}
}

func (s Shape) index() milvus.Index {
	params := map[string]string{"index_type": s.Index, "metric_type": "L2"}
	switch s.Index {
	case "IVF_FLAT":
		params["params"] = `{"nlist":64}`
	case "HNSW":
		params["params"] = `{"M":8,"efConstruction":64}`
	default:
		params["params"] = `{}`
	}
	return milvus.Index{Name: "v_idx", Field: "v", Params: params}
}

// Seed creates the shape on c, reporting rows written after each batch.
func Seed(ctx context.Context, c *milvus.Conn, s Shape, progress func(done, total int64)) error {
	if err := s.Validate(); err != nil {
		return err
	}
	dbs := s.DatabaseNames()
	total := int64(len(dbs)*s.Collections) * s.Rows
	var done int64
	const batch = 2000
	for di, db := range dbs {
		if err := c.CreateDatabase(ctx, db); err != nil {
			return err
		}
		for j := 0; j < s.Collections; j++ {
			name := s.CollectionName(j)
			schema := s.Schema(name)
			if err := c.CreateCollection(ctx, db, schema, milvus.CollectionSettings{Shards: s.Shards, Level: commonpb.ConsistencyLevel_Bounded}); err != nil {
				return err
			}
			parts := []string{"_default"}
			for p := 0; p < s.Partitions; p++ {
				parts = append(parts, fmt.Sprintf("p%d", p))
				if err := c.CreatePartition(ctx, db, name, parts[len(parts)-1]); err != nil {
					return err
				}
			}
			// One stream of numbers per collection, so the data does not
			// depend on the order collections are seeded in.
			gen := milvus.RowGen{Schema: schema, Rand: rand.New(rand.NewPCG(s.Seed, uint64(di*1000+j)))}
			for start := int64(0); start < s.Rows; start += batch {
				n := int(min(batch, s.Rows-start))
				keys := milvus.Keys{}
				if !s.AutoID {
					for i := 0; i < n; i++ {
						if s.PKType == "varchar" {
							keys.Strs = append(keys.Strs, fmt.Sprintf("k%010d", start+int64(i)))
						} else {
							keys.Ints = append(keys.Ints, start+int64(i))
						}
					}
				}
				cols := gen.Columns(n, keys, func(i int) int64 { return start + int64(i) })
				part := parts[int(start/batch)%len(parts)]
				if _, err := c.Insert(ctx, db, name, part, cols, n); err != nil {
					return err
				}
				done += int64(n)
				if progress != nil {
					progress(done, total)
				}
			}
			if s.Index != "none" {
				if err := c.CreateIndex(ctx, db, name, s.index()); err != nil {
					return err
				}
			}
			if s.Aliases {
				if err := c.CreateAlias(ctx, db, name, name+"_alias"); err != nil {
					return err
				}
			}
			if s.Load {
				if s.Index == "none" {
					return fmt.Errorf("--load needs an index (--index)")
				}
				if err := c.Load(ctx, db, name); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// ShapeOf summarizes an inventory in the terms of a Shape, for checks.
func ShapeOf(inv *milvus.Inventory) string {
	type coll struct {
		DB, Name string
		Parts    int
		Rows     int64
		Aliases  []string
		Index    string
		PK       string
		AutoID   bool
		Dynamic  bool
		Dim      int64
		Loaded   bool
	}
	var out []coll
	for _, d := range inv.Databases {
		for _, c := range d.Collections {
			x := coll{DB: d.Name, Name: c.Name, Parts: len(c.Partitions), Rows: c.Rows, Aliases: c.Aliases, Dynamic: c.DynamicField, Loaded: c.Loaded}
			for _, f := range c.Fields {
				if f.PrimaryKey {
					x.PK, x.AutoID = f.Type, f.AutoID
				}
				if f.Dim > 0 {
					x.Dim = f.Dim
				}
			}
			for _, i := range c.Indexes {
				x.Index = i.Name + ":" + i.Params["index_type"]
			}
			out = append(out, x)
		}
	}
	data, _ := json.Marshal(out)
	return string(data)
}
