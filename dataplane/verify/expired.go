package verify

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// expiredOnSource says whether every difference the walk found in cr is
// a row the target holds alone in a collection whose rows expire, none
// of them written through the proxy since the check before (written),
// and counts them apart from the differences. Milvus 2.3 removes an
// expired row when it compacts its segment, and the target, which got
// each row when it was copied or replayed, counts its time to live from
// then: the source's compaction removes rows the target keeps until its
// own, up to a time to live later. Such rows are not a replay's fault.
func expiredOnSource(cr *CollectionReport, written []string) bool {
	if !cr.Expires || cr.Missing+cr.Different > 0 || cr.TargetDuplicates > 0 || cr.Extra == 0 || len(cr.OnlyOnTarget) != cr.Extra {
		return false
	}
	if anyWritten(cr.OnlyOnTarget, written) {
		return false
	}
	alone := keySet(cr.OnlyOnTarget)
	cr.ExpiredOnSource, cr.Extra = cr.Extra, 0
	// The keys the report names are no mismatch either: say why they are
	// on the target alone.
	for i, m := range cr.Mismatches {
		if k, ok := strings.CutSuffix(m, onlyOnTarget); ok && alone[k] {
			cr.Mismatches[i] = k + onlyOnTarget + ", removed from the source after its time to live"
		}
	}
	return true
}

// anyWritten says whether any of keys is among written.
func anyWritten(keys, written []string) bool {
	set := keySet(keys)
	return slices.ContainsFunc(written, func(k string) bool { return set[k] })
}

func keySet(keys []string) map[string]bool {
	set := make(map[string]bool, len(keys))
	for _, k := range keys {
		set[k] = true
	}
	return set
}

// RemoveExpired deletes from the target the rows that rep, a check found
// equal while writes are held, counts as removed from the source after
// their time to live. Left there, the application that moves to the
// target would find them until the target's own compaction, up to a time
// to live later; removed, the target holds what the source held at the
// switch. None of those keys is on the source, and none was written
// through the proxy since the check before (expiredOnSource), so no write
// of the application is undone. It returns how many rows it deleted.
func RemoveExpired(ctx context.Context, target *milvus.Conn, rep *Report) (int, error) {
	removed := 0
	for i := range rep.Collections {
		c := &rep.Collections[i]
		if c.ExpiredOnSource == 0 || len(c.OnlyOnTarget) != c.ExpiredOnSource {
			continue
		}
		if err := removeRows(ctx, target, c.Database, c.Collection, c.OnlyOnTarget); err != nil {
			return removed, err
		}
		c.ExpiredRemoved = true
		removed += c.ExpiredOnSource
	}
	return removed, nil
}

// removeRows deletes from the target's collection db/coll the rows of
// keys (as the key field's values print), removed from the source after
// their time to live.
func removeRows(ctx context.Context, target *milvus.Conn, db, coll string, keys []string) error {
	col, err := target.Structure(ctx, db, coll)
	if err != nil {
		return err
	}
	for chunk := range slices.Chunk(keys, heldChunk) {
		if _, err := target.Delete(ctx, db, coll, "", keysExpr(col.PrimaryField(), chunk)); err != nil {
			return fmt.Errorf("remove the rows of %s/%s the source removed after their time to live: %w", db, coll, err)
		}
	}
	return nil
}

// expiredNote says which collections hold rows on the target alone that
// the source's compaction removed after their time to live ("" if none).
func (r *Report) expiredNote() string {
	var in []string
	rows, removed := 0, 0
	for _, c := range r.Collections {
		if n := c.ExpiredOnSource + c.ExpiredRemovedEarly; n > 0 {
			in = append(in, fmt.Sprintf("%s/%s (%d)", c.Database, c.Collection, n))
			rows += n
			removed += c.ExpiredRemovedEarly
			if c.ExpiredRemoved {
				removed += c.ExpiredOnSource
			}
		}
	}
	switch {
	case rows == 0:
		return ""
	case removed == rows:
		return fmt.Sprintf("the target held %d rows the source removed after their time to live (collection.ttl.seconds), in %s: "+
			"the switch deleted them from the target", rows, strings.Join(in, ", "))
	}
	return fmt.Sprintf("the target holds %d rows the source removed after their time to live (collection.ttl.seconds), in %s: "+
		"the target counts it from when it got them, and removes them at its own compaction", rows, strings.Join(in, ", "))
}
