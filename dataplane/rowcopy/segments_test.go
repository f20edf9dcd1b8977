package rowcopy

import (
	"strings"
	"testing"

	"github.com/zdm-io/zdm/domain"
)

func TestTheCopyModeIsSegmentsWhereBothClustersAllowIt(t *testing.T) {
	for _, c := range []struct {
		asked, src, dst, srcV, dstV string
		mode, why, refusal          string
	}{
		{domain.CopyModeAuto, "/s", "/t", "v2.3.5", "v2.3.7", domain.CopyModeSegments, "run Milvus 2.3", ""},
		{"", "/s", "/t", "v2.3.5", "2.3.5", domain.CopyModeSegments, "storage", ""},
		{domain.CopyModeAuto, "", "/t", "v2.3.5", "v2.3.5", domain.CopyModeRows, "source cluster has no storage_path", ""},
		{domain.CopyModeAuto, "/s", "", "v2.3.5", "v2.3.5", domain.CopyModeRows, "target cluster has no storage_path", ""},
		{domain.CopyModeAuto, "/s", "/t", "v2.3.5", "v2.4.1", domain.CopyModeRows, "same major.minor", ""},
		{domain.CopyModeSegments, "/s", "", "v2.3.5", "v2.3.5", domain.CopyModeRows, "target", "options.copy_mode is segments, but the target"},
		{domain.CopyModeRows, "/s", "/t", "v2.3.5", "v2.3.5", domain.CopyModeRows, "copy_mode is rows", ""},
	} {
		mode, why, refusal := copyMode(c.asked, c.src, c.dst, c.srcV, c.dstV)
		if mode != c.mode || !strings.Contains(why, c.why) || (c.refusal == "") != (refusal == "") || !strings.HasPrefix(refusal, c.refusal) {
			t.Errorf("%+v: got %q, %q, %q", c, mode, why, refusal)
		}
	}
}
