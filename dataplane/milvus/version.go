package milvus

import (
	"strconv"
	"strings"
)

// CompareVersions compares "v2.3.5-lite"-style versions by their numbers.
func CompareVersions(a, b string) int {
	pa, pb := versionParts(a), versionParts(b)
	for i := 0; i < 3; i++ {
		if pa[i] != pb[i] {
			if pa[i] < pb[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// MajorMinor is a version's "2.3" for "v2.3.5-lite": binlogs keep their
// format within it.
func MajorMinor(v string) string {
	p := versionParts(v)
	return strconv.Itoa(p[0]) + "." + strconv.Itoa(p[1])
}

func versionParts(v string) [3]int {
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+ "); i >= 0 {
		v = v[:i]
	}
	var out [3]int
	for i, p := range strings.SplitN(v, ".", 3) {
		out[i], _ = strconv.Atoi(p)
	}
	return out
}
