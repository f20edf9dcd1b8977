package rowcopy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/segcopy"
	"github.com/zdm-io/zdm/domain"
)

// copyMode decides, in the preflight, whether the copy moves segments or
// rows, and why. A refusal is set when segments were asked for and
// cannot be had.
func copyMode(asked, srcStorage, dstStorage, srcVersion, dstVersion string) (mode, why, refusal string) {
	if asked == domain.CopyModeRows {
		return domain.CopyModeRows, "options.copy_mode is rows", ""
	}
	var whyNot string
	switch {
	case srcStorage == "":
		whyNot = "the source cluster has no storage_path"
	case dstStorage == "":
		whyNot = "the target cluster has no storage_path"
	case majorMinor(srcVersion) != majorMinor(dstVersion):
		whyNot = fmt.Sprintf("the source runs Milvus %s and the target %s: binlogs move between the same major.minor version only", srcVersion, dstVersion)
	}
	switch {
	case whyNot == "":
		return domain.CopyModeSegments, "both clusters give zdm their storage and run Milvus " + majorMinor(srcVersion), ""
	case asked == domain.CopyModeSegments:
		return domain.CopyModeRows, whyNot, "options.copy_mode is segments, but " + whyNot
	}
	return domain.CopyModeRows, whyNot, ""
}

func majorMinor(v string) string {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

// segmentFallback says why a collection is copied by rows in a segment
// copy ("" for none): shapes the import of binlogs was not proven with.
func segmentFallback(col *milvus.Collection) string {
	switch {
	case col.PrimaryField().GetAutoID():
		return "autoID keys (a target field without autoID has not been proven with imported binlogs)"
	case hasPartitionKey(col):
		return "a partition key (the target names its partitions itself)"
	}
	return ""
}

// segmentMode reads the preflight's choice of copy mode and the
// collections it copies by rows.
func segmentMode(m *domain.Migration) (segments bool, byRows map[string]bool) {
	var pf struct {
		Mode   string   `json:"copy_mode"`
		ByRows []string `json:"copied_by_rows"`
	}
	if m.Preflight != nil {
		_ = json.Unmarshal(m.Preflight, &pf)
	}
	byRows = map[string]bool{}
	for _, s := range pf.ByRows {
		key, _, _ := strings.Cut(s, ":")
		byRows[key] = true
	}
	return pf.Mode == domain.CopyModeSegments, byRows
}

// Names of a segment copy's checkpoints: a segment's binlogs staged on the
// target, and a partition imported there.
func segmentStep(coll, part, seg int64) string {
	return fmt.Sprintf("segment/%d/%d/%d", coll, part, seg)
}

func importStep(coll, part int64, name string) string {
	return fmt.Sprintf("import/%d/%d/%s", coll, part, name)
}

// copySegments moves a collection by its segments: flushes and lists
// them (recorded as its plan), stages each segment's binlogs on the
// target's storage, then has the target import each partition. Every
// segment staged and every partition imported is a checkpoint: a resumed
// copy stages no segment twice and imports no partition twice.
func (r preparer) copySegments(ctx context.Context, p *domain.CollectionProgress, col *milvus.Collection) error {
	src, dst := r.src, r.dst
	planned := p.Planned
	if len(planned) == 0 {
		listing, err := segcopy.List(ctx, src, col.Database, col.Name)
		if err != nil {
			return err
		}
		cp := domain.CollectionPlan{Database: col.Database, Collection: col.Name}
		slices.SortFunc(listing.Partitions, func(a, b segcopy.Partition) int { return int(a.ID - b.ID) })
		for _, part := range listing.Partitions {
			if len(part.Segments) == 0 {
				continue
			}
			for _, s := range part.Segments {
				cp.Ranges = append(cp.Ranges, segmentStep(listing.Collection, part.ID, s.ID))
				cp.Rows += s.Rows
			}
			cp.Ranges = append(cp.Ranges, importStep(listing.Collection, part.ID, part.Name))
		}
		if len(cp.Ranges) == 0 {
			return r.checkpoint(ctx, domain.BulkCopyProgressed{Database: p.Database, Collection: p.Collection, Range: "empty", Done: true})
		}
		if err := r.checkpoint(ctx, domain.BulkCopyProgressed{Database: p.Database, Collection: p.Collection, Plan: &cp}); err != nil {
			return err
		}
		planned = cp.Ranges
	}
	sc := &segcopy.Copier{Source: segcopy.Local{Root: src.StoragePath()}, Target: segcopy.Local{Root: dst.StoragePath()}, Stage: stageOf(r.m.ID)}
	for _, name := range planned {
		if _, done := p.DoneRanges[name]; done {
			continue
		}
		kind, rest, _ := strings.Cut(name, "/")
		f := strings.SplitN(rest, "/", 3)
		if len(f) != 3 {
			return fmt.Errorf("%s: a step of the plan is not understood: %q", col.Key(), name)
		}
		coll, err1 := strconv.ParseInt(f[0], 10, 64)
		part, err2 := strconv.ParseInt(f[1], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("%s: a step of the plan is not understood: %q", col.Key(), name)
		}
		progress := domain.BulkCopyProgressed{Database: p.Database, Collection: p.Collection, Range: name}
		switch kind {
		case "segment":
			seg, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				return fmt.Errorf("%s: a step of the plan is not understood: %q", col.Key(), name)
			}
			bytes, err := sc.CopySegment(ctx, coll, part, milvus.Segment{ID: seg, PartitionID: part})
			progress.Bytes = bytes
			if err != nil {
				if errors.Is(err, segcopy.ErrSegmentGone) {
					return &domain.StepError{Reason: "segment_gone", Permanent: true, Err: fmt.Errorf(
						"%s: %w; the source's garbage collection removed it before it was copied: start the migration again, or with options.copy_mode rows", col.Key(), err)}
				}
				return err
			}
		case "import":
			rows, err := sc.Import(ctx, dst, col.Database, col.Name, f[2], coll, part)
			if err != nil {
				return &domain.StepError{Reason: "import_failed", Err: fmt.Errorf("%s partition %s: %w", col.Key(), f[2], err)}
			}
			progress.Rows = rows
		default:
			return fmt.Errorf("%s: a step of the plan is not understood: %q", col.Key(), name)
		}
		if err := r.checkpoint(ctx, progress); err != nil {
			return err
		}
		if kind == "import" {
			// The target wrote its own segments: the staged files are
			// no longer needed.
			_ = sc.Target.Remove(ctx, fmt.Sprintf("%s/insert_log/%d/%d", sc.Stage, coll, part))
			_ = sc.Target.Remove(ctx, fmt.Sprintf("%s/delta_log/%d/%d", sc.Stage, coll, part))
		}
	}
	return nil
}

// stageOf is where a migration's segments land on the target's storage.
func stageOf(migrationID string) string { return "zdm-import/" + migrationID }
