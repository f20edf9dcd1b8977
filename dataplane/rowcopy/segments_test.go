package rowcopy

import (
	"strings"
	"testing"

	"github.com/zdm-io/zdm/domain"
)

func TestTheCopyModeIsSegmentsWhereBothClustersAllowIt(t *testing.T) {
	for _, c := range []struct {
		asked, src, dst, probe, srcV, dstV string
		mode, why, refusal                 string
	}{
		{domain.CopyModeAuto, "/s", "/t", "", "v2.3.5", "v2.3.7", domain.CopyModeSegments, "run Milvus 2.3", ""},
		{"", "/s", "/t", "", "v2.3.5", "2.3.5", domain.CopyModeSegments, "storage", ""},
		{domain.CopyModeAuto, "", "/t", "", "v2.3.5", "v2.3.5", domain.CopyModeRows, "source cluster has no storage (storage_path or storage_s3)", ""},
		{domain.CopyModeAuto, "/s", "", "", "v2.3.5", "v2.3.5", domain.CopyModeRows, "target cluster has no storage (storage_path or storage_s3)", ""},
		{domain.CopyModeAuto, "/s", "/t", "", "v2.3.5", "v2.4.1", domain.CopyModeRows, "same major.minor", ""},
		{domain.CopyModeSegments, "/s", "", "", "v2.3.5", "v2.3.5", domain.CopyModeRows, "target", "options.copy_mode is segments, but the target"},
		{domain.CopyModeRows, "/s", "/t", "", "v2.3.5", "v2.3.5", domain.CopyModeRows, "copy_mode is rows", ""},
		{domain.CopyModeAuto, "/s", "/t", "the source's storage holds no logs", "v2.3.5", "v2.3.5", domain.CopyModeRows, "holds no logs", ""},
		{domain.CopyModeSegments, "/s", "/t", "the source's storage holds no logs", "v2.3.5", "v2.3.5", domain.CopyModeRows, "holds no logs", "options.copy_mode is segments, but the source's storage"},
	} {
		mode, why, refusal := copyMode(c.asked, c.src != "", c.dst != "", c.probe, c.srcV, c.dstV)
		if mode != c.mode || !strings.Contains(why, c.why) || (c.refusal == "") != (refusal == "") || !strings.HasPrefix(refusal, c.refusal) {
			t.Errorf("%+v: got %q, %q, %q", c, mode, why, refusal)
		}
	}
}

func TestASegmentCopysStepsReadBackAsTheyWereNamed(t *testing.T) {
	for _, s := range []step{
		{kind: domain.SegmentStep, coll: 4, part: 5, seg: 6},
		{kind: domain.ImportStep, coll: 4, part: 5, partition: "p/1"},
	} {
		got, err := parseStep(s.String())
		if err != nil || got != s {
			t.Errorf("%v read back as %+v (%v)", s, got, err)
		}
	}
	for _, bad := range []string{"", "segment/1/2", "segment/1/x/3", "segment/1/2/x", "range/1/2/3"} {
		if _, err := parseStep(bad); err == nil {
			t.Errorf("%q was understood", bad)
		}
	}
}
