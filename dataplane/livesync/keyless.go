package livesync

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// An insert without keys (the source assigns them) whose outcome zdm never
// saw cannot be repaired by its keys. Milvus gives keys in increasing
// order, so the rows that insert may have written have keys above the
// largest one the source had given an insert of the collection before it
// (Entry.AfterKey, as the proxy saw them): every row above it that the
// target lacks is copied from the source. The other rows of that range
// are writes zdm journaled, which the applier writes in their order.

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
	n, err := a.copyMissing(ctx, db, coll, col, parts, part, afterKey)
	if err == nil {
		a.logger.Info("an insert without keys and without a known outcome was repaired by the keys after the last one known",
			"collection", db+"/"+coll, "after_key", afterKey, "rows", n)
	}
	return err
}

// copyMissing gives the target the source's rows with keys above after
// that it lacks, and returns how many. It compares keys only, a page of
// the source's at a time (a query with a limit returns the smallest keys,
// as the copy's pages rely on) against the target's in the same span, and
// reads whole rows only of the keys missing: most of the rows above the
// last known key are writes the journal brought already.
func (a *Applier) copyMissing(ctx context.Context, db, coll string, col *milvus.Collection, parts []string, part string, after int64) (int, error) {
	pk := col.PrimaryField().GetName()
	copied := 0
	for {
		page, err := a.source.Query(ctx, db, coll, fmt.Sprintf("%s > %d", pk, after), []string{pk}, parts, milvus.QueryWindow)
		if err != nil {
			return copied, &sourceWait{err}
		}
		src := milvus.KeysOf(milvus.Column(page, pk)).Ints
		if len(src) == 0 {
			return copied, nil
		}
		last := slices.Max(src)
		have, err := a.targetKeys(ctx, db, coll, pk, parts, after, last)
		if err != nil {
			return copied, err
		}
		var missing []int64
		for _, k := range src {
			if !have[k] {
				missing = append(missing, k)
			}
		}
		for chunk := range slices.Chunk(missing, repairChunk) {
			if err := a.repairKeys(ctx, db, coll, col, part, milvus.Keys{Ints: chunk}, true); err != nil {
				return copied, err
			}
		}
		copied += len(missing)
		from, upTo := strconv.FormatInt(after, 10), strconv.FormatInt(last, 10)
		end, err := a.source.LastPage(ctx, db, coll, col.PrimaryField(), parts, &from, upTo, len(src), milvus.QueryWindow, 0)
		if err != nil {
			return copied, &sourceWait{err}
		}
		if end {
			return copied, nil
		}
		after = last
	}
}

// targetKeys returns the target's keys above after and up to last, a page
// at a time.
func (a *Applier) targetKeys(ctx context.Context, db, coll, pk string, parts []string, after, last int64) (map[int64]bool, error) {
	have := map[int64]bool{}
	for {
		page, err := a.target.Query(ctx, db, coll, fmt.Sprintf("%s > %d && %s <= %d", pk, after, pk, last), []string{pk}, parts, milvus.QueryWindow)
		if err != nil {
			return nil, err
		}
		keys := milvus.KeysOf(milvus.Column(page, pk)).Ints
		for _, k := range keys {
			have[k] = true
		}
		if len(keys) == 0 {
			return have, nil
		}
		if after = slices.Max(keys); after == last {
			return have, nil
		}
	}
}
