package verify

import (
	"context"
	"fmt"
	"slices"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"golang.org/x/sync/errgroup"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// A key can be held in several partitions at once, with a row in each:
// Milvus 2.3 applies an upsert naming a partition as a delete in that
// partition and an insert, so upserting a key held in another partition
// leaves both rows. zdm copies partition by partition and replays the
// upsert, so the target holds the same rows; but a query over the whole
// collection returns one row of such a key, and not the same one on each
// side. Keys whose rows differ are therefore read again partition by
// partition when a side holds more rows than keys under them: a key whose
// rows are equal in every partition is equal.

// Bounds of a reading again: past splitKeysMax keys the rows differ as
// read (that many differing rows are not this case).
const (
	splitKeysMax      = 2_000
	splitKeysParallel = 8
)

// settleSplitKeys compares again, partition by partition, the keys both
// sides' rows sh and th hold with different rows, and marks in th those
// equal in every partition as equal; it returns them (nil: none).
func settleSplitKeys(ctx context.Context, src, dst sideOf, c *milvus.Collection, fields []string, sh, th map[string]uint64) (map[string]bool, error) {
	var differ []string
	for k, h := range sh {
		if h2, ok := th[k]; ok && h2 != h {
			differ = append(differ, k)
		}
	}
	if len(differ) == 0 || len(differ) > splitKeysMax || milvus.HasPartitionKeyField(c.Schema) {
		// A partition-key collection's partitions cannot be named in a
		// query, and Milvus deletes an upserted key from all of them.
		return nil, nil
	}
	slices.Sort(differ)
	pk := c.PrimaryField()
	expr := keysExpr(pk, differ)
	var sn, dn int64
	var sp []string
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { sn, err = src.c.CountAt(gctx, src.db, src.cl, expr, src.ts); return err })
	g.Go(func() (err error) { dn, err = dst.c.CountAt(gctx, dst.db, dst.cl, expr, dst.ts); return err })
	g.Go(func() (err error) { sp, err = samePartitions(gctx, src, dst); return err })
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("count the rows of %d differing keys of %s/%s: %w", len(differ), src.db, src.cl, err)
	}
	if n := int64(len(differ)); (sn <= n && dn <= n) || sp == nil {
		return nil, nil // each key held once, or partitions that differ: the rows differ
	}
	type sides struct{ s, d map[string]uint64 }
	read := make([]sides, len(sp))
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(splitKeysParallel)
	for i, part := range sp {
		for _, side := range []struct {
			of  sideOf
			out *map[string]uint64
		}{{src, &read[i].s}, {dst, &read[i].d}} {
			g.Go(func() error {
				cols, err := side.of.c.QueryAt(gctx, side.of.db, side.of.cl, expr, fields, []string{part}, 0, side.of.ts)
				if err != nil {
					return fmt.Errorf("read %d keys of %s/%s in partition %s: %w", len(differ), side.of.db, side.of.cl, part, err)
				}
				*side.out = rowHashes(cols, pk.GetName(), c.Schema)
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	same := make(map[string]bool, len(differ))
	for _, k := range differ {
		same[k] = true
	}
	for _, r := range read {
		for k := range same {
			hs, ins := r.s[k]
			hd, ind := r.d[k]
			if ins != ind || hs != hd {
				delete(same, k)
			}
		}
	}
	for k := range same {
		th[k] = sh[k]
	}
	return same, nil
}

// keysExpr is the filter of keys written as text.
func keysExpr(pk *schemapb.FieldSchema, keys []string) string {
	typ := "int64"
	if pk.GetDataType() == schemapb.DataType_VarChar {
		typ = "varchar"
	}
	return milvus.KeysFromStrings(typ, keys).InExpr(pk.GetName())
}
