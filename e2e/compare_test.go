package e2e

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-sdk-go/v2/client"
	"github.com/milvus-io/milvus-sdk-go/v2/entity"
)

// compareRowByRow reads every collection of both clusters through
// milvus-sdk-go, in key order, and compares them row by row: an
// independent check of what zdm's own verification reports.
func compareRowByRow(t *testing.T, srcAddr, dstAddr string) int {
	ctx := context.Background()
	src, err := client.NewClient(ctx, client.Config{Address: srcAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := client.NewClient(ctx, client.Config{Address: dstAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	dbs, err := src.ListDatabases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, db := range dbs {
		_ = src.UsingDatabase(ctx, db.Name)
		_ = dst.UsingDatabase(ctx, db.Name)
		colls, err := src.ListCollections(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, coll := range colls {
			a, b := dumpRows(t, src, coll.Name), dumpRows(t, dst, coll.Name)
			if len(a) != len(b) {
				t.Fatalf("%s/%s: %d rows on the source, %d on the target", db.Name, coll.Name, len(a), len(b))
			}
			for k, row := range a {
				if b[k] != row {
					t.Fatalf("%s/%s key %s:\nsource %s\ntarget %s", db.Name, coll.Name, k, row, b[k])
				}
			}
			total += len(a)
		}
	}
	return total
}

// dumpPage is the rows of one query: Milvus's largest window.
const dumpPage = 16384

// dumpRows returns every row of a collection as key -> rendered values,
// vectors by their bits.
func dumpRows(t *testing.T, c client.Client, coll string) map[string]string {
	ctx := context.Background()
	desc, err := c.DescribeCollection(ctx, coll)
	if err != nil {
		t.Fatal(err)
	}
	// The description's Loaded is never set by this SDK: asked for the
	// load state, a loaded collection is read as it is and left loaded.
	state, err := c.GetLoadState(ctx, coll, nil)
	if err != nil {
		t.Fatal(err)
	}
	if state != entity.LoadStateLoaded {
		if err := c.LoadCollection(ctx, coll, false); err != nil {
			t.Fatal(err)
		}
		defer c.ReleaseCollection(ctx, coll)
	}
	pk := desc.Schema.PKFieldName()
	var fields []string
	for _, f := range desc.Schema.Fields {
		fields = append(fields, f.Name)
	}
	if desc.Schema.EnableDynamicField {
		fields = append(fields, "colour", "weight")
	}
	out := map[string]string{}
	last := ""
	for {
		expr := ""
		if last != "" {
			expr = pk + " > " + last
		}
		rs, err := c.Query(ctx, coll, nil, expr, fields, client.WithLimit(dumpPage), client.WithSearchQueryConsistencyLevel(entity.ClStrong))
		if err != nil {
			t.Fatal(err)
		}
		keys := rs.GetColumn(pk)
		n := keys.Len()
		for i := 0; i < n; i++ {
			var row strings.Builder
			for _, name := range fields {
				col := rs.GetColumn(name)
				if col == nil {
					continue
				}
				switch v := col.(type) {
				case *entity.ColumnFloatVector:
					for _, x := range v.Data()[i] {
						row.WriteString(strconv.FormatUint(uint64(math.Float32bits(x)), 16))
						row.WriteByte(',')
					}
				default:
					val, _ := col.Get(i)
					fmt.Fprintf(&row, "|%v", val)
				}
			}
			v, err := keys.Get(i)
			if err != nil {
				t.Fatal(err)
			}
			key := fmt.Sprint(v)
			out[key] = row.String()
			if i == n-1 {
				last = key
				if keys.Type() == entity.FieldTypeVarChar {
					last = fmt.Sprintf("%q", key)
				}
			}
		}
		if n < dumpPage {
			return out
		}
	}
}
