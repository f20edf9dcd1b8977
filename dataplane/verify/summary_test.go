package verify

import "testing"

func TestTheSummaryNamesRowsTheSourceHoldsUnderKeysItAlreadyHolds(t *testing.T) {
	for _, c := range []struct {
		rep  Report
		want string
	}{{
		rep:  Report{Equal: true, Collections: []CollectionReport{{Database: "a", Collection: "b", RowsCompared: 10, Equal: true}}},
		want: "all 1 collections equal (10 rows compared)",
	}, {
		rep: Report{Equal: true, Collections: []CollectionReport{
			{Database: "a", Collection: "b", RowsCompared: 10, SourceRows: 12, TargetRows: 10, SourceDuplicates: 2, Equal: true},
			{Database: "a", Collection: "c", RowsCompared: 5, SourceRows: 5, TargetRows: 5, Equal: true}}},
		want: "all 2 collections equal (15 rows compared); the source holds 2 rows under keys it already holds, in a/b (2): inserts a client repeated; the target holds each key once",
	}, {
		rep: Report{Collections: []CollectionReport{
			{Database: "a", Collection: "b", SourceRows: 11, TargetRows: 10, SourceDuplicates: 1, TargetDuplicates: 1}}},
		want: "a/b: rows 11 on the source, 10 on the target, 1 of them under keys the target already holds; the source holds 1 rows under keys it already holds, in a/b (1): inserts a client repeated",
	}, {
		rep:  Report{Equal: true, Collections: []CollectionReport{{Database: "a", Collection: "b", RowsCompared: 3, Equal: true}}, NotLoaded: []string{"a/c"}},
		want: "all 1 collections equal (3 rows compared); rows of 1 not compared, not loaded on the source: a/c",
	}} {
		if got := c.rep.Summary(); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}
