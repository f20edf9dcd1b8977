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
// for the collection's default) with keys above afterKey. With none known
// (the proxy saw no insert of the collection answered since it started),
// the insert's rows may have any key: the whole collection is copied
// again, which the status notes, rather than leave them on the source
// only for the switch's check to refuse the migration. Repaired again at
// the switch, such an insert is not copied whole while writes are held:
// its rows came with the first repair, and one that landed on the source
// only after it changes the counts the check compares.
func (a *Applier) repairKeyless(ctx context.Context, db, coll string, col *milvus.Collection, part string, afterKey int64, again bool) error {
	if afterKey <= 0 && again {
		a.logger.Info("an insert without keys and without a known outcome, copied whole when first repaired, is left to the switch's check",
			"collection", db+"/"+coll)
		return nil
	}
	if afterKey <= 0 {
		// Keys the source assigns are positive.
		afterKey = 0
		a.warn(ctx, fmt.Sprintf("an insert into %s/%s with keys the source assigns has no known outcome (zdmd stopped, or the call broke off), "+
			"and no key the source gave before it is known: the collection (or the partition written) is copied again from the source so that the target "+
			"gets its rows; the collection's other writes wait meanwhile (the lag shows it)", db, coll))
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
