package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
)

// checkSeeded reads every seeded row from the source and from the target,
// page by page of keys, and compares them field by field. It is the
// demo's own check, apart from zdm's verification: the client writer
// never touches a seeded key, so after the switch both must hold exactly
// the rows the seed wrote.
func checkSeeded(ctx context.Context, src, dst *milvus.Conn, shapes []datatools.Shape) (string, error) {
	const page = 5000
	var rows, colls int64
	for _, s := range shapes {
		for _, db := range s.DatabaseNames() {
			for j := 0; j < s.Collections; j++ {
				name := s.CollectionName(j)
				colls++
				for lo := int64(0); lo < s.Rows; lo += page {
					expr := keyRange(s, lo, min(lo+page, s.Rows))
					want, err := digests(ctx, src, db, name, expr)
					if err != nil {
						return "", fmt.Errorf("read the seeded rows of %s/%s on the source: %w", db, name, err)
					}
					got, err := digests(ctx, dst, db, name, expr)
					if err != nil {
						return "", fmt.Errorf("read the seeded rows of %s/%s on the target: %w", db, name, err)
					}
					if int64(len(want)) != min(page, s.Rows-lo) {
						return "", fmt.Errorf("%s/%s on the source holds %d of the %d rows seeded at %s", db, name, len(want), min(page, s.Rows-lo), expr)
					}
					for k, v := range want {
						if got[k] != v {
							return "", fmt.Errorf("seeded row %s of %s/%s is missing or different on the target", k, db, name)
						}
					}
					if len(got) != len(want) {
						return "", fmt.Errorf("%s/%s on the target holds %d rows at %s, the source %d", db, name, len(got), expr, len(want))
					}
					rows += int64(len(want))
				}
			}
		}
	}
	return fmt.Sprintf("%d of %d collections read, %d rows, every one on the target as on the source", colls, colls, rows), nil
}

// keyRange selects the seeded keys [lo, hi) of a shape (see milvus.Seed).
func keyRange(s datatools.Shape, lo, hi int64) string {
	if s.PKType == "varchar" {
		return fmt.Sprintf(`id >= "k%010d" && id < "k%010d"`, lo, hi)
	}
	return fmt.Sprintf("id >= %d && id < %d", lo, hi)
}

// digests reads the rows of expr with every field and returns each row's
// values as text, by key.
func digests(ctx context.Context, c *milvus.Conn, db, coll, expr string) (map[string]string, error) {
	cols, err := c.Query(ctx, db, coll, expr, []string{"*"}, nil, 0)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(cols, func(a, b *schemapb.FieldData) int { return strings.Compare(a.GetFieldName(), b.GetFieldName()) })
	keys := milvus.KeysOf(milvus.Column(cols, "id")).Strings()
	out := make(map[string]string, len(keys))
	for i, k := range keys {
		var b strings.Builder
		for _, f := range cols {
			fmt.Fprintf(&b, "%s=%s;", f.GetFieldName(), cell(f, i))
		}
		out[k] = b.String()
	}
	return out, nil
}

// cell is the i-th value of a column, as text; JSON is compared by value.
func cell(f *schemapb.FieldData, i int) string {
	sc := f.GetScalars()
	switch {
	case sc.GetLongData() != nil:
		return fmt.Sprint(sc.GetLongData().GetData()[i])
	case sc.GetIntData() != nil:
		return fmt.Sprint(sc.GetIntData().GetData()[i])
	case sc.GetStringData() != nil:
		return sc.GetStringData().GetData()[i]
	case sc.GetBoolData() != nil:
		return fmt.Sprint(sc.GetBoolData().GetData()[i])
	case sc.GetFloatData() != nil:
		return fmt.Sprint(sc.GetFloatData().GetData()[i])
	case sc.GetDoubleData() != nil:
		return fmt.Sprint(sc.GetDoubleData().GetData()[i])
	case sc.GetJsonData() != nil:
		var v any
		if err := json.Unmarshal(sc.GetJsonData().GetData()[i], &v); err != nil {
			return string(sc.GetJsonData().GetData()[i])
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	if fv := f.GetVectors().GetFloatVector(); fv != nil {
		dim := int(f.GetVectors().GetDim())
		return fmt.Sprint(fv.GetData()[i*dim : (i+1)*dim])
	}
	return fmt.Sprintf("(a %s value this check does not read)", f.GetType())
}
