package milvus

import "testing"

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"v2.3.5-lite", "v2.3.5", 0}, {"v2.3.4", "v2.3.5", -1}, {"2.4.0", "v2.3.9", 1}, {"v2.10.0", "v2.9.1", 1}} {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("%s vs %s = %d", c.a, c.b, got)
		}
	}
}

func TestMajorMinorKeepsTheFirstTwoNumbers(t *testing.T) {
	for v, want := range map[string]string{"v2.3.5-lite": "2.3", "2.4.1": "2.4", "v2.3": "2.3"} {
		if got := MajorMinor(v); got != want {
			t.Errorf("MajorMinor(%q) = %q, want %q", v, got, want)
		}
	}
}
