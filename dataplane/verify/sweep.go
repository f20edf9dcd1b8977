package verify

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// The source's compactions remove the rows of a collection whose rows
// expire (collection.ttl.seconds) a time to live after it got them; the
// target, which got them at the copy, keeps them up to a time to live
// longer. Left until the switch, 100,000 such rows in one collection
// refused it. The sync deletes them as it goes: TargetOnly lists them,
// RemoveGone deletes those the source still lacks when the applier of
// the collection is between two entries (livesync's expiry sweep).

// Sweepable says whether col, as the source describes it, is swept: its
// rows expire and every partition is loaded. A partition not loaded on
// the source hides its rows from queries, and the target's copies of
// them would look like rows the source removed.
func Sweepable(ctx context.Context, src *milvus.Conn, col *milvus.Collection) (bool, error) {
	if !col.Expires() || !col.Loaded {
		return false, nil
	}
	unloaded, err := src.UnloadedPartitions(ctx, col.Database, col)
	return err == nil && len(unloaded) == 0, err
}

// TargetOnly lists up to onlyTargetMax keys (as the key field's values
// print) that the target's collection holds and the source's does not,
// in key order; more says the walk found more than it lists. The keys
// are walked only when the target counts more rows than the source.
func TargetOnly(ctx context.Context, src, dst *milvus.Conn, col *milvus.Collection) (keys []string, more bool, err error) {
	db, coll := col.Database, col.Name
	from, to := sideOf{src, db, coll, 0}, sideOf{dst, db, coll, 0}
	if from.ts, err = src.ReadTimestamp(ctx, db, coll); err != nil {
		return nil, false, err
	}
	if to.ts, err = dst.ReadTimestamp(ctx, db, coll); err != nil {
		return nil, false, err
	}
	var n, m int64
	if n, err = src.CountAt(ctx, db, coll, "", from.ts); err != nil {
		return nil, false, err
	}
	if m, err = dst.CountAt(ctx, db, coll, "", to.ts); err != nil || m <= n {
		return nil, false, err
	}
	d, err := diffKeys(ctx, from, to, col.PrimaryField(), 0, false)
	if err != nil {
		return nil, false, err
	}
	return d.onlyTarget, d.extra > len(d.onlyTarget), nil
}

// RemoveGone deletes from the target the rows of keys that the source
// does not hold, read strongly now, and returns how many keys that was.
// The caller sees to it that no write of those keys is applied to the
// target meanwhile: one the source takes after this read is journaled and
// applied after the delete, and stands.
func RemoveGone(ctx context.Context, src, dst *milvus.Conn, col *milvus.Collection, keys []string) (int, error) {
	pk := col.PrimaryField()
	gone := slices.Clone(keys)
	if len(keys) > 0 {
		held := map[string]bool{}
		err := src.KeyRows(ctx, col.Database, col.Name, pk.GetName(), keysOf(pk, keys), []string{pk.GetName()}, nil, 0, func(cols []*schemapb.FieldData) error {
			maps.Copy(held, keySet(milvus.KeysOf(milvus.Column(cols, pk.GetName())).Strings()))
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("read on the source the keys of %s the target alone holds: %w", col.Key(), err)
		}
		gone = slices.DeleteFunc(gone, func(k string) bool { return held[k] })
	}
	if len(gone) == 0 {
		return 0, nil
	}
	if _, err := dst.Delete(ctx, col.Database, col.Name, "", keysExpr(pk, gone)); err != nil {
		return 0, fmt.Errorf("remove the rows of %s the source removed after their time to live: %w", col.Key(), err)
	}
	return len(gone), nil
}
