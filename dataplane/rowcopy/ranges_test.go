package rowcopy

import (
	"testing"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

func TestCoarsenJoinsConsecutiveRanges(t *testing.T) {
	s := func(v string) *string { return &v }
	var ranges []milvus.KeyRange
	var prev *string
	for i, k := range []string{"10", "20", "30", "40", "50", "60", "70"} {
		ranges = append(ranges, milvus.KeyRange{Partition: "p", Index: i, Gt: prev, Le: s(k)})
		prev = s(k)
	}
	got := coarsen(ranges, 3)
	want := []milvus.KeyRange{{Partition: "p", Index: 0, Le: s("30")}, {Partition: "p", Index: 1, Gt: s("30"), Le: s("60")}}
	if len(got) != len(want) {
		t.Fatalf("got %d ranges, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Name() != want[i].Name() {
			t.Errorf("range %d: %s, want %s", i, got[i].Name(), want[i].Name())
		}
	}
}
