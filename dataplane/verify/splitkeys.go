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

// settled is what reading differing keys again found.
type settled struct {
	// split: keys equal in every partition; again: keys the source holds
	// in several rows of one partition, inserted again with other values.
	split, again map[string]bool
}

// all reports whether k was settled either way.
func (st settled) all(k string) bool { return st.split[k] || st.again[k] }

// settleSplitKeys compares again, partition by partition, the keys both
// sides' rows sh and th hold with different rows, and marks in th those
// equal in every partition as equal; then those the source holds in
// several rows of one partition (again.go).
func settleSplitKeys(ctx context.Context, src, dst sideOf, c *milvus.Collection, fields []string, sh, th map[string]uint64) (settled, error) {
	var st settled
	var differ []string
	for k, h := range sh {
		if h2, ok := th[k]; ok && h2 != h {
			differ = append(differ, k)
		}
	}
	if len(differ) == 0 || len(differ) > splitKeysMax || milvus.HasPartitionKeyField(c.Schema) {
		// A partition-key collection's partitions cannot be named in a
		// query, and Milvus deletes an upserted key from all of them.
		return st, nil
	}
	slices.Sort(differ)
	src, dst = src.fixed(ctx), dst.fixed(ctx)
	pk := c.PrimaryField()
	expr := keysExpr(pk, differ)
	var sn, dn int64
	var sp []string
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { sn, err = src.c.CountAt(gctx, src.db, src.cl, expr, src.ts); return err })
	g.Go(func() (err error) { dn, err = dst.c.CountAt(gctx, dst.db, dst.cl, expr, dst.ts); return err })
	g.Go(func() (err error) { sp, err = samePartitions(gctx, src, dst); return err })
	if err := g.Wait(); err != nil {
		return st, fmt.Errorf("count the rows of %d differing keys of %s/%s: %w", len(differ), src.db, src.cl, err)
	}
	n := int64(len(differ))
	if sn <= n && dn <= n {
		return st, nil // each key held once: the rows differ
	}
	// Where several partitions can be named, each key's rows in each (nil:
	// one partition, or none to name).
	var byPart *partitionRows
	if sp != nil {
		var err error
		if byPart, err = readPartitions(ctx, src, dst, pk, c.Schema, fields, differ, sp); err != nil {
			return st, err
		}
	}
	var rest []string
	for _, k := range differ {
		if byPart != nil && byPart.alike(k) {
			if st.split == nil {
				st.split = map[string]bool{}
			}
			st.split[k] = true
		} else {
			rest = append(rest, k)
		}
	}
	var err error
	if st.again, err = insertedAgain(ctx, src, dst, pk, rest, byPart); err != nil {
		return st, err
	}
	for _, k := range differ {
		if st.all(k) {
			th[k] = sh[k]
		}
	}
	return st, nil
}

// partitionRows is each partition's rows of some keys on each side,
// hashed over the fields read (the key alone: which keys it holds).
type partitionRows struct {
	parts []string
	rows  [][2]map[string]uint64 // by partition, then source and target
}

// readPartitions reads fields of keys in each of parts, on both sides.
func readPartitions(ctx context.Context, src, dst sideOf, pk *schemapb.FieldSchema, schema *schemapb.CollectionSchema, fields, keys, parts []string) (*partitionRows, error) {
	pr := &partitionRows{parts: parts, rows: make([][2]map[string]uint64, len(parts))}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(splitKeysParallel)
	for i, part := range parts {
		for side, s := range []sideOf{src, dst} {
			g.Go(func() error {
				rows, err := s.keyHashes(gctx, pk, schema, keys, fields, []string{part})
				if err != nil {
					return fmt.Errorf("read keys of %s/%s in partition %s: %w", s.db, s.cl, part, err)
				}
				pr.rows[i][side] = rows
				return nil
			})
		}
	}
	return pr, g.Wait()
}

// in lists the partitions where a side (0: source, 1: target) holds k.
func (pr *partitionRows) in(side int, k string) []string {
	var where []string
	for i, r := range pr.rows {
		if _, ok := r[side][k]; ok {
			where = append(where, pr.parts[i])
		}
	}
	return where
}

// alike reports whether both sides hold k in the same partitions, with
// the same row in each.
func (pr *partitionRows) alike(k string) bool {
	for _, r := range pr.rows {
		hs, ins := r[0][k]
		hd, ind := r[1][k]
		if ins != ind || hs != hd {
			return false
		}
	}
	return true
}

// keysExpr is the filter of keys written as text.
func keysExpr(pk *schemapb.FieldSchema, keys []string) string {
	return keysOf(pk, keys).InExpr(pk.GetName())
}

// keysOf reads keys of pk written as text.
func keysOf(pk *schemapb.FieldSchema, keys []string) milvus.Keys {
	typ := "int64"
	if pk.GetDataType() == schemapb.DataType_VarChar {
		typ = "varchar"
	}
	return milvus.KeysFromStrings(typ, keys)
}

// splitNote says how many keys were compared partition by partition (""
// if none).
func (r *Report) splitNote() string {
	split := r.total(func(c CollectionReport) int { return c.SplitKeys })
	if split == 0 {
		return ""
	}
	return fmt.Sprintf("%d keys held in several partitions on both sides (an upsert into another partition keeps the old row) were compared partition by partition", split)
}

// fixed is s read at a timestamp taken now where it was read strongly:
// what follows reads in rounds, and each round of strong reads waits for
// the server's next time tick. It holds every write the reads before it
// saw. A server that gives no timestamp is read strongly.
func (s sideOf) fixed(ctx context.Context) sideOf {
	if s.ts == 0 {
		s.ts, _ = s.c.AllocTimestamp(ctx)
	}
	return s
}
