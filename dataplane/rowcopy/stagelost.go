package rowcopy

import (
	"context"
	"fmt"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/segcopy"
	"github.com/zdm-io/zdm/domain"
)

// stageLost checks, before a partition's import, that the stage on the
// target's storage still holds every segment staged for it: Milvus
// imports what is there and says it succeeded, so files removed from the
// stage since (by hand, by a lifecycle rule of the bucket) would leave
// their rows off the target without an error. Where some are gone, the
// partition is listed and staged again (gone), as for a segment
// compacted away, at most maxReplans times in all; past that the import
// fails import_failed, naming them.
func (r preparer) stageLost(ctx context.Context, sc *segcopy.Copier, p *domain.CollectionProgress, col *milvus.Collection, s step, replans int) (gone bool, err error) {
	var segs []int64
	for _, name := range stepsOf(p.Planned, s.part) {
		if st, err := parseStep(name); err == nil && st.kind == domain.SegmentStep {
			segs = append(segs, st.seg)
		}
	}
	missing, err := sc.MissingStaged(ctx, s.coll, s.part, segs)
	if err != nil {
		return false, fmt.Errorf("%s partition %s: list the staged segments: %w", col.Key(), s.partition, err)
	}
	if len(missing) == 0 {
		return false, nil
	}
	if replans < maxReplans {
		why := fmt.Sprintf("the staged logs of segments %v were gone from the target's storage before the import", missing)
		return true, r.replan(ctx, sc, p, col, s.coll, s.part, why)
	}
	return false, &domain.StepError{Reason: "import_failed", Err: fmt.Errorf(
		"%s partition %s: the staged logs of segments %v are gone from the target's storage before the import, after the partition was staged %d times: "+
			"something removes files under its zdm-import/ prefix", col.Key(), s.partition, missing, replans+1)}
}
