package livesync

import (
	"testing"

	"github.com/zdm-io/zdm/dataplane/verify"
)

// The switch's report counts, per collection, every row deleted before
// the hold: by the switch's sweep and by the deletion after the check
// before the hold, which can both reach one collection.
func TestTheSwitchsReportCountsTheRowsItsSweepAndItsEarlyDeletionRemoved(t *testing.T) {
	rep := &verify.Report{Collections: []verify.CollectionReport{{Database: "d", Collection: "a"}, {Database: "d", Collection: "b"}, {Database: "d", Collection: "c"}}}
	pre := &verify.Report{Collections: []verify.CollectionReport{{Database: "d", Collection: "a", ExpiredRemovedEarly: 3}, {Database: "d", Collection: "c"}}}
	keepEarlyRemovals(rep, pre, map[[2]string]int{{"d", "a"}: 100_000, {"d", "b"}: 7})
	got := map[string]int{}
	for _, c := range rep.Collections {
		got[c.Collection] = c.ExpiredRemovedEarly
	}
	if got["a"] != 100_003 || got["b"] != 7 || got["c"] != 0 {
		t.Fatalf("rows deleted before the hold by collection: %v; want a 100003, b 7, c 0", got)
	}
	keepEarlyRemovals(rep, nil, nil) // a switch whose check before the hold did not complete
	if rep.Collections[0].ExpiredRemovedEarly != 100_003 {
		t.Fatalf("without a check before the hold or a sweep: %+v", rep.Collections[0])
	}
}
