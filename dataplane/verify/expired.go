package verify

import (
	"fmt"
	"slices"
	"strings"
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
	alone := make(map[string]bool, len(cr.OnlyOnTarget))
	for _, k := range cr.OnlyOnTarget {
		alone[k] = true
	}
	if slices.ContainsFunc(written, func(k string) bool { return alone[k] }) {
		return false
	}
	cr.ExpiredOnSource, cr.Extra = cr.Extra, 0
	return true
}

// expiredNote says which collections hold rows on the target alone that
// the source's compaction removed after their time to live ("" if none).
func (r *Report) expiredNote() string {
	var in []string
	rows := 0
	for _, c := range r.Collections {
		if c.ExpiredOnSource > 0 {
			in = append(in, fmt.Sprintf("%s/%s (%d)", c.Database, c.Collection, c.ExpiredOnSource))
			rows += c.ExpiredOnSource
		}
	}
	if rows == 0 {
		return ""
	}
	return fmt.Sprintf("the target holds %d rows the source removed after their time to live (collection.ttl.seconds), in %s: "+
		"the target counts it from when it got them, and removes them at its own compaction", rows, strings.Join(in, ", "))
}
