package verify

import (
	"strings"
	"testing"
)

// Rows the target alone holds are told apart as removed by the source's
// time to live only where nothing else could explain them.
func TestOnlyRowsNoWriteExplainsInACollectionWhoseRowsExpireAreToldApart(t *testing.T) {
	expiring := func() CollectionReport {
		return CollectionReport{Database: "a", Collection: "b", Expires: true, SourceRows: 1, TargetRows: 3, Extra: 2, OnlyOnTarget: []string{"7", "8"}}
	}
	for _, c := range []struct {
		name    string
		change  func(*CollectionReport)
		written []string
		apart   bool
	}{
		{"every row the target alone holds named", func(*CollectionReport) {}, []string{"9"}, true},
		{"no time to live", func(c *CollectionReport) { c.Expires = false }, nil, false},
		{"a key written since the check before", func(*CollectionReport) {}, []string{"8"}, false},
		{"rows the walk did not name", func(c *CollectionReport) { c.Extra = 3 }, nil, false},
		{"a row missing on the target", func(c *CollectionReport) { c.Missing = 1 }, nil, false},
		{"a row that differs", func(c *CollectionReport) { c.Different = 1 }, nil, false},
		{"a key twice on the target", func(c *CollectionReport) { c.TargetDuplicates = 1 }, nil, false},
	} {
		cr := expiring()
		c.change(&cr)
		extra := cr.Extra
		if got := expiredOnSource(&cr, c.written); got != c.apart {
			t.Errorf("%s: told apart %v, want %v", c.name, got, c.apart)
			continue
		}
		if c.apart && (cr.ExpiredOnSource != extra || cr.Extra != 0) {
			t.Errorf("%s: %d expired on the source, %d extra; want %d and 0", c.name, cr.ExpiredOnSource, cr.Extra, extra)
		}
		if !c.apart && (cr.ExpiredOnSource != 0 || cr.Extra != extra) {
			t.Errorf("%s: %d expired on the source, %d extra; want 0 and %d", c.name, cr.ExpiredOnSource, cr.Extra, extra)
		}
	}
	rep := Report{Equal: true, Collections: []CollectionReport{{Database: "a", Collection: "b", RowsCompared: 4, Equal: true, ExpiredOnSource: 2}}}
	if s := rep.Summary(); !strings.Contains(s, "the target holds 2 rows the source removed after their time to live (collection.ttl.seconds), in a/b (2)") {
		t.Fatalf("summary: %s", s)
	}
	// Rows deleted before the hold count with those deleted while it held
	// writes.
	rep.Collections[0].ExpiredRemoved, rep.Collections[0].ExpiredRemovedEarly = true, 3
	if s := rep.Summary(); !strings.Contains(s, "the target held 5 rows the source removed after their time to live (collection.ttl.seconds), in a/b (5): the switch deleted them") {
		t.Fatalf("summary: %s", s)
	}
}
