package rowcopy

import (
	"context"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// maxRangesPerPartition bounds a plan's size: every range of a collection
// is named in the event that records its plan, which JetStream takes up
// to 1 MB.
const maxRangesPerPartition = 1000

// planRanges cuts a partition into ranges of about rowsPerRange rows by
// reading its keys in order; a partition too large for that many ranges
// gets fewer, larger ones.
func planRanges(ctx context.Context, c *milvus.Conn, col *milvus.Collection, part string, rowsPerRange int, ts uint64) ([]milvus.KeyRange, error) {
	pk := col.PrimaryField()
	parts := []string{part}
	if part == "" {
		parts = nil
	}
	var ranges []milvus.KeyRange
	var prev *string
	var cursor *string
	seen := 0
	const page = 10000
	all := milvus.KeyRange{}
	for {
		cols, err := c.QueryAt(ctx, col.Database, col.Name, all.Expr(pk, cursor), []string{pk.GetName()}, parts, page, ts)
		if err != nil {
			return nil, err
		}
		keys := milvus.KeysOf(milvus.Column(cols, pk.GetName())).Strings()
		for _, k := range keys {
			seen++
			if seen%rowsPerRange == 0 {
				k := k
				ranges = append(ranges, milvus.KeyRange{Partition: part, Index: len(ranges), Gt: prev, Le: &k})
				prev = &k
			}
		}
		if len(keys) == 0 {
			break
		}
		last := keys[len(keys)-1]
		// A short page may not be the last (see milvus.LastPage).
		end, err := c.LastPage(ctx, col.Database, col.Name, pk, parts, cursor, last, len(keys), page, ts)
		if err != nil {
			return nil, err
		}
		if end {
			break
		}
		cursor = &last
	}
	if len(ranges) >= maxRangesPerPartition {
		ranges = coarsen(ranges, len(ranges)/maxRangesPerPartition+1)
		if len(ranges) > 0 {
			prev = ranges[len(ranges)-1].Le
		}
	}
	// The last range is open above: rows written after the plan land in
	// it (and in the journal, which replays them anyway).
	return append(ranges, milvus.KeyRange{Partition: part, Index: len(ranges), Gt: prev}), nil
}

// coarsen joins every n consecutive closed ranges into one.
func coarsen(ranges []milvus.KeyRange, n int) []milvus.KeyRange {
	var out []milvus.KeyRange
	for i := n - 1; i < len(ranges); i += n {
		r := milvus.KeyRange{Partition: ranges[i].Partition, Index: len(out), Le: ranges[i].Le}
		if len(out) > 0 {
			r.Gt = out[len(out)-1].Le
		}
		out = append(out, r)
	}
	return out
}
