package livesync

import (
	"context"
	"fmt"
	"math"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// An insert without keys (the source assigns them) whose outcome zdm never
// saw cannot be repaired by its keys. Milvus gives keys in increasing
// order, so the rows that insert may have written have keys above the
// largest one the source had given an insert of the collection before it
// (Entry.AfterKey, as the proxy saw them): every row above it is copied
// from the source. The other rows of that range are writes zdm journaled,
// which the applier writes again in their order; writing them once more
// changes nothing.

// repairKeyless copies from the source the rows of partition part (""
// for the collection's default) with keys above afterKey; with none known
// (the proxy saw no insert of the collection answered since it started),
// the rows may stay on the source only, and it says so.
func (a *Applier) repairKeyless(ctx context.Context, db, coll string, col *milvus.Collection, part string, afterKey int64) error {
	if afterKey <= 0 {
		a.warn(ctx, fmt.Sprintf("an insert into %s/%s with keys the source assigns has no known outcome (zdmd stopped, or the call broke off), "+
			"and no key the source gave before it is known: its rows may be on the source only; the check at the switch compares the counts", db, coll))
		return nil
	}
	var parts []string
	switch {
	case part != "":
		parts = []string{part}
	case !milvus.HasPartitionKeyField(col.Schema):
		parts = []string{"_default"}
	}
	n, err := a.copyKeyRange(ctx, db, coll, col, parts, afterKey+1, math.MaxInt64)
	if err == nil {
		a.logger.Info("an insert without keys and without a known outcome was repaired by the keys after the last one known",
			"collection", db+"/"+coll, "after_key", afterKey, "rows", n)
	}
	return err
}

// copyKeyRange upserts on the target the source's rows with keys from lo
// to hi, halving the range while a query returns as many rows as Milvus
// returns at most.
func (a *Applier) copyKeyRange(ctx context.Context, db, coll string, col *milvus.Collection, parts []string, lo, hi int64) (int, error) {
	pk := col.PrimaryField().GetName()
	rows, err := a.source.Query(ctx, db, coll, fmt.Sprintf("%s >= %d and %s <= %d", pk, lo, pk, hi), milvus.OutputFields(col), parts, milvus.QueryWindow)
	if err != nil {
		return 0, &sourceWait{err}
	}
	n := milvus.Rows(rows)
	if n >= milvus.QueryWindow && hi > lo {
		mid := lo + (hi-lo)/2
		first, err := a.copyKeyRange(ctx, db, coll, col, parts, lo, mid)
		if err != nil {
			return first, err
		}
		second, err := a.copyKeyRange(ctx, db, coll, col, parts, mid+1, hi)
		return first + second, err
	}
	if n == 0 {
		return 0, nil
	}
	milvus.MarkDynamic(rows)
	milvus.FitArrays(rows, col.Schema)
	part := ""
	if len(parts) == 1 && parts[0] != "_default" {
		part = parts[0]
	}
	_, err = a.target.Upsert(ctx, db, coll, part, rows, n)
	return n, err
}
