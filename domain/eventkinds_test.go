package domain

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// The operator guide lists every event type a history may hold, and no
// other: it is checked against the one list the decoder and the
// transition table come from.
func TestTheOperatorGuideListsEveryEventType(t *testing.T) {
	doc, err := os.ReadFile("../docs/operator-guide.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile("(?m)^\\| `(zdm\\.[a-z_.]+\\.v[0-9]+)` \\|").FindAllStringSubmatch(string(doc), -1)
	var listed, want []string
	for _, r := range rows {
		listed = append(listed, r[1])
	}
	for _, k := range EventKinds() {
		want = append(want, k.Type)
	}
	if !slices.Equal(listed, want) {
		t.Fatalf("the guide lists\n%v\nthe code has\n%v", listed, want)
	}
}

func TestEveryKindDecodesWhatItNames(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range EventKinds() {
		if seen[k.Type] {
			t.Fatalf("%s listed twice", k.Type)
		}
		seen[k.Type] = true
		e, err := DecodeEvent(k.Type, []byte("{}"))
		if err != nil {
			t.Fatalf("%s: %v", k.Type, err)
		}
		if e.EventType() != k.Type {
			t.Fatalf("%s decodes as %s", k.Type, e.EventType())
		}
		if (k.Aggregate == "migration") != (len(k.from) > 0) {
			t.Fatalf("%s: a migration event needs the states it may follow, a cluster event none", k.Type)
		}
	}
}

func TestALagSampleIsAStepOnlyWhenItCrosses(t *testing.T) {
	if IsStep(LagSampled{LagSeconds: 3}) {
		t.Fatal("a periodic sample is listed as a step")
	}
	if !IsStep(LagSampled{LagSeconds: 3, Crossed: "under"}) {
		t.Fatal("a threshold crossing is left out of the steps")
	}
	if !IsStep(BulkCopied{}) || !IsStep(ClusterLocked{}) {
		t.Fatal("a step is left out")
	}
}

// A sample records a crossing only when it changes side: a first sample
// under the threshold is one, a first sample over it is not.
func TestALagSampleNamesOnlyRealCrossings(t *testing.T) {
	m := NewMigration()
	m.Options = Options{}.WithDefaults()
	threshold := m.Options.LagThresholdSeconds
	for i, c := range []struct {
		lag  float64
		want string
	}{{threshold + 5, ""}, {threshold + 1, ""}, {threshold / 2, "under"}, {threshold / 4, ""}, {threshold * 2, "over"}} {
		if got := m.crossed(c.lag); got != c.want {
			t.Fatalf("sample %d (%.1fs after %+v): crossed %q, want %q", i, c.lag, m.Lag, got, c.want)
		}
		m.Lag = LagInfo{Seconds: c.lag, Sampled: true}
	}
}
