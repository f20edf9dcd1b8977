package verify

import (
	"context"
	"fmt"
	"maps"
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

// keyHashes reads the side's rows of keys in parts (nil: every one), the
// fields named, each key's once however many rows it holds
// (milvus.Conn.KeyRows), hashed as rowHashes does (the key alone with a
// schema of nil).
func (s sideOf) keyHashes(ctx context.Context, pk *schemapb.FieldSchema, schema *schemapb.CollectionSchema, keys, fields, parts []string) (map[string]uint64, error) {
	out := map[string]uint64{}
	err := s.c.KeyRows(ctx, s.db, s.cl, pk.GetName(), keysOf(pk, keys), fields, parts, s.ts, func(page []*schemapb.FieldData) error {
		maps.Copy(out, rowHashes(page, pk.GetName(), schema))
		return nil
	})
	return out, err
}

// explainCounts is called when a comparison found no row differing but
// the row counts differ: it walks the keys of both sides (diffKeys),
// which a key held twice does not change, records how many rows each side
// holds under keys it already holds, and names the keys one side holds and
// the other does not. It reports whether the two sides hold the same keys,
// with no key twice on the target. With keep, the report keeps the walk's
// ledger for a check made later while writes are held (heldkeys.go).
func explainCounts(ctx context.Context, cr *CollectionReport, col *milvus.Collection, src, dst sideOf, maxNamed int, keep bool) (bool, error) {
	pk := col.PrimaryField()
	d, err := diffKeys(ctx, src, dst, pk, max(0, maxNamed-len(cr.Mismatches)), keep)
	if err != nil {
		return false, err
	}
	cr.ledger = d.ledger
	cr.SourceDuplicates = max(0, cr.SourceRows-d.srcKeys)
	cr.TargetDuplicates = max(0, cr.TargetRows-d.dstKeys)
	cr.Missing += d.missing
	cr.Extra += d.extra
	cr.Mismatches = append(cr.Mismatches, d.named...)
	if d.extra > 0 && len(d.onlyTarget) == d.extra {
		cr.OnlyOnTarget = d.onlyTarget
	}
	if d.missing > 0 || d.extra > 0 || cr.SourceDuplicates+cr.TargetDuplicates == 0 {
		return d.missing == 0 && d.extra == 0 && cr.TargetDuplicates == 0, nil
	}
	bp, err := explainByPartition(ctx, cr, col, src, dst, d.ledger)
	if err != nil {
		return false, err
	}
	cr.Different += len(bp.named)
	cr.Mismatches = append(cr.Mismatches, bp.named[:min(len(bp.named), max(0, maxNamed-len(cr.Mismatches)))]...)
	return len(bp.named) == 0 && cr.TargetDuplicates == 0, nil
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
