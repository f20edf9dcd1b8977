package verify

import (
	"context"
	"fmt"
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// A client that repeats an insert whose answer it lost (pymilvus retries
// one answered UNAVAILABLE, which is what a client sees when the zdmd it
// wrote through dies) can leave a key twice on the source. Milvus keeps
// both rows and counts both, while its queries return the key once. zdm
// writes the target by key, so the target holds that key once: the row
// counts differ and no row does. Those extra rows are the client's doing;
// the comparison reports them and compares the keys. A key the target
// holds twice is zdm's doing, and is a difference.

// sideOf is one cluster's collection and the timestamp it is read at.
type sideOf struct {
	c      *milvus.Conn
	db, cl string
	ts     uint64
}

// explainCounts is called when a comparison found no row differing but
// the row counts differ: it counts the distinct keys of both sides, which
// a key held twice does not change, and records how many rows each side
// holds under keys it already holds. It reports whether the two sides hold
// the same keys, with no key twice on the target.
func explainCounts(ctx context.Context, cr *CollectionReport, pk *schemapb.FieldSchema, src, dst sideOf) (bool, error) {
	srcKeys, err := distinctKeys(ctx, src, pk)
	if err != nil {
		return false, err
	}
	dstKeys, err := distinctKeys(ctx, dst, pk)
	if err != nil {
		return false, err
	}
	cr.SourceDuplicates = max(0, cr.SourceRows-srcKeys)
	cr.TargetDuplicates = max(0, cr.TargetRows-dstKeys)
	return srcKeys == dstKeys && cr.TargetDuplicates == 0, nil
}

// distinctKeys counts the distinct keys of a collection, reading its key
// column alone, in key order, a query window at a time.
func distinctKeys(ctx context.Context, s sideOf, pk *schemapb.FieldSchema) (int64, error) {
	all := milvus.KeyRange{}
	var cursor *string
	var n int64
	for {
		page, err := s.c.QueryAt(ctx, s.db, s.cl, all.Expr(pk, cursor), []string{pk.GetName()}, nil, milvus.QueryWindow, s.ts)
		if err != nil {
			return 0, fmt.Errorf("count the keys of %s/%s: %w", s.db, s.cl, err)
		}
		keys := milvus.KeysOf(milvus.Column(page, pk.GetName())).Strings()
		seen := make(map[string]struct{}, len(keys))
		for _, k := range keys {
			seen[k] = struct{}{}
		}
		n += int64(len(seen))
		if len(keys) < milvus.QueryWindow {
			return n, nil
		}
		last := keys[len(keys)-1]
		cursor = &last
	}
}

// duplicatesNote says which collections' sources hold rows under keys
// they already hold ("" if none).
func (r *Report) duplicatesNote() string {
	var in []string
	var rows, twiceOnTarget int64
	for _, c := range r.Collections {
		if c.SourceDuplicates > 0 {
			in = append(in, fmt.Sprintf("%s/%s (%d)", c.Database, c.Collection, c.SourceDuplicates))
			rows += c.SourceDuplicates
		}
		twiceOnTarget += c.TargetDuplicates
	}
	if rows == 0 {
		return ""
	}
	note := fmt.Sprintf("the source holds %d rows under keys it already holds, in %s: inserts a client repeated", rows, strings.Join(in, ", "))
	if twiceOnTarget == 0 {
		note += "; the target holds each key once"
	}
	return note
}
