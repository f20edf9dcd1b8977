package datatools

import "testing"

func TestCheckAcceptsTheOutcomesOfFailedWrites(t *testing.T) {
	acked := expected{present: true, version: 5}
	maybeUpsert := expected{present: true, version: 5, or: []expected{{present: true, version: 7}}}
	maybeDelete := expected{present: true, version: 5, or: []expected{{present: false}}}
	maybeInsert := expected{or: []expected{{present: true, version: 3}}}
	for _, c := range []struct {
		name     string
		e        expected
		present  bool
		version  int64
		accepted bool
	}{
		{"acked, as written", acked, true, 5, true},
		{"acked, older version", acked, true, 4, false},
		{"acked, gone", acked, false, 0, false},
		{"failed upsert not applied", maybeUpsert, true, 5, true},
		{"failed upsert applied", maybeUpsert, true, 7, true},
		{"failed upsert, a version nobody wrote", maybeUpsert, true, 6, false},
		{"failed upsert, gone", maybeUpsert, false, 0, false},
		{"failed delete applied", maybeDelete, false, 0, true},
		{"failed delete not applied", maybeDelete, true, 5, true},
		{"failed insert applied", maybeInsert, true, 3, true},
		{"failed insert not applied", maybeInsert, false, 0, true},
	} {
		if got := c.e.accepts(c.present, c.version, true); got != c.accepted {
			t.Errorf("%s: accepts = %v, want %v", c.name, got, c.accepted)
		}
	}
}
