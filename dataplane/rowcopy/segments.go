package rowcopy

import (
	"cmp"
	"context"
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
func copyMode(asked string, srcStorage, dstStorage bool, srcProbe, srcVersion, dstVersion string) (mode, why, refusal string) {
	if asked == domain.CopyModeRows {
		return domain.CopyModeRows, "options.copy_mode is rows", ""
	}
	var whyNot string
	switch {
	case !srcStorage:
		whyNot = "the source cluster has no storage (storage_path or storage_s3)"
	case !dstStorage:
		whyNot = "the target cluster has no storage (storage_path or storage_s3)"
	case srcProbe != "":
		whyNot = srcProbe
	case milvus.MajorMinor(srcVersion) != milvus.MajorMinor(dstVersion):
		whyNot = fmt.Sprintf("the source runs Milvus %s and the target %s: binlogs move between the same major.minor version only", srcVersion, dstVersion)
	}
	switch {
	case whyNot == "":
		return domain.CopyModeSegments, "both clusters give zdm their storage and run Milvus " + milvus.MajorMinor(srcVersion), ""
	case asked == domain.CopyModeSegments:
		return domain.CopyModeRows, whyNot, "options.copy_mode is segments, but " + whyNot
	}
	return domain.CopyModeRows, whyNot, ""
}

// step is one checkpoint of a segment copy's plan (see domain.SegmentStep).
type step struct {
	kind       string
	coll, part int64
	seg        int64  // of a segment step
	partition  string // of an import step
}

func (s step) String() string {
	if s.kind == domain.SegmentStep {
		return fmt.Sprintf("%s/%d/%d/%d", s.kind, s.coll, s.part, s.seg)
	}
	return fmt.Sprintf("%s/%d/%d/%s", s.kind, s.coll, s.part, s.partition)
}

func parseStep(name string) (step, error) {
	kind, rest, _ := strings.Cut(name, "/")
	f := strings.SplitN(rest, "/", 3)
	s := step{kind: kind}
	var errs [3]error
	if len(f) == 3 {
		s.coll, errs[0] = strconv.ParseInt(f[0], 10, 64)
		s.part, errs[1] = strconv.ParseInt(f[1], 10, 64)
		switch kind {
		case domain.SegmentStep:
			s.seg, errs[2] = strconv.ParseInt(f[2], 10, 64)
		case domain.ImportStep:
			s.partition = f[2]
		}
	}
	if len(f) != 3 || errors.Join(errs[:]...) != nil || (kind != domain.SegmentStep && kind != domain.ImportStep) {
		return s, fmt.Errorf("a step of the segment copy's plan is not understood: %q", name)
	}
	return s, nil
}

// segmentCopier stages and imports between the migration's clusters.
func (r preparer) segmentCopier() (*segcopy.Copier, error) {
	from, err := storageOf(r.src)
	if err != nil {
		return nil, err
	}
	to, err := storageOf(r.dst)
	if err != nil {
		return nil, err
	}
	return &segcopy.Copier{Source: from, Target: to, Stage: "zdm-import/" + r.m.ID}, nil
}

// storageOf is a cluster's storage as zdm reaches it.
func storageOf(c *milvus.Conn) (segcopy.Storage, error) {
	st, accessKey, secretKey := c.StorageS3()
	if st == nil {
		return segcopy.Local{Root: c.StoragePath()}, nil
	}
	return segcopy.S3Of(*st, accessKey, secretKey)
}

// copySegments moves a collection by its segments: flushes and lists
// them (recorded as its plan), then copies each partition (see
// copyPartition). Several zdmd share the partitions of a copy: each is
// copied by whoever holds its claim, and this one waits at the end for
// those others hold, taking over any whose holder died.
func (r preparer) copySegments(ctx context.Context, p *domain.CollectionProgress, col *milvus.Collection) error {
	if len(p.Planned) == 0 {
		listing, err := segcopy.List(ctx, r.src, col.Database, col.Name)
		if err != nil {
			return err
		}
		cp := planOf(p, listing, nil)
		if len(cp.Ranges) == 0 {
			return r.checkpoint(ctx, domain.BulkCopyProgressed{Database: p.Database, Collection: p.Collection, Range: "empty", Done: true})
		}
		if err := r.checkpoint(ctx, domain.BulkCopyProgressed{Database: p.Database, Collection: p.Collection, Plan: &cp}); err != nil {
			return err
		}
		p.Planned = cp.Ranges
	}
	sc, err := r.segmentCopier()
	if err != nil {
		return err
	}
	parts, err := partitionsOf(p.Planned)
	if err != nil {
		return fmt.Errorf("%s: %w", col.Key(), err)
	}
	var elsewhere []int64
	for _, part := range parts {
		if err := r.sharedPartition(ctx, sc, p, col, part, func() { elsewhere = append(elsewhere, part) }); err != nil {
			return err
		}
	}
	return awaitElsewhere(ctx, r.c.logger.With("migration", r.m.ID, "collection", col.Key()), "partitions", elsewhere, func(part int64) (bool, error) {
		return r.c.copied(ctx, r.m.ID, p.Database, p.Collection, importOf(p.Planned, part))
	}, func(part int64) (bool, error) {
		here := true
		err := r.sharedPartition(ctx, sc, p, col, part, func() { here = false })
		return here, err
	}, func(int64) error { return nil })
}

// sharedPartition copies a partition while holding its claim; elsewhere
// is called when another zdmd holds it.
func (r preparer) sharedPartition(ctx context.Context, sc *segcopy.Copier, p *domain.CollectionProgress, col *milvus.Collection, part int64, elsewhere func()) error {
	imported := importOf(p.Planned, part)
	if _, done := p.DoneRanges[imported]; done {
		return nil
	}
	work := fmt.Sprintf("%s/%s/partition/%d", r.m.ID, col.Key(), part)
	return r.c.claimWork(ctx, work, func(ctx context.Context) (bool, error) {
		return r.c.copied(ctx, r.m.ID, p.Database, p.Collection, imported)
	}, func(held context.Context, first bool) error {
		if !first {
			// Someone began the partition: the history says what of it
			// is done and what its plan is now (it may have been
			// replanned by another zdmd).
			now, err := r.c.progressOf(held, r.m.ID, p.Database, p.Collection)
			if err != nil {
				return err
			}
			if now != nil {
				p.Planned, p.DoneRanges = now.Planned, now.DoneRanges
			}
		}
		return r.copyPartition(held, sc, p, col, part)
	}, elsewhere, func() error { return nil })
}

// copyPartition stages each segment of a partition's plan on the target's
// storage, then has the target import the partition. Every segment staged
// and the import are checkpoints: a resumed copy stages no segment twice
// and imports no partition twice.
func (r preparer) copyPartition(ctx context.Context, sc *segcopy.Copier, p *domain.CollectionProgress, col *milvus.Collection, part int64) error {
	// With a segment staged by this call the partition cannot have an
	// import yet: nobody got past its staging. Otherwise the target's
	// imports are looked up first (see segcopy.Import).
	stagedHere := false
	replans := 0
steps:
	for _, name := range stepsOf(p.Planned, part) {
		if _, done := p.DoneRanges[name]; done {
			continue
		}
		s, err := parseStep(name)
		if err != nil {
			return fmt.Errorf("%s: %w", col.Key(), err)
		}
		progress := domain.BulkCopyProgressed{Database: p.Database, Collection: p.Collection, Range: name}
		if s.kind == domain.SegmentStep {
			progress.Bytes, err = sc.CopySegment(ctx, s.coll, s.part, milvus.Segment{ID: s.seg, PartitionID: s.part})
			stagedHere = true
			if errors.Is(err, segcopy.ErrSegmentGone) && replans < maxReplans {
				// Compacted into other segments since the listing, and
				// collected: the partition is listed again and its staged
				// segments dropped, so none of its rows is imported twice.
				replans++
				if err := r.replan(ctx, sc, p, col, s.coll, s.part, "a segment listed for the copy was compacted away"); err != nil {
					return err
				}
				goto steps
			}
			if errors.Is(err, segcopy.ErrSegmentGone) {
				return &domain.StepError{Reason: "segment_gone", Permanent: true, Err: fmt.Errorf(
					"%s: %w, and again after the partition was listed %d times: start the migration again, or with options.copy_mode rows", col.Key(), err, replans)}
			}
		} else {
			var gone bool
			if gone, err = r.stageLost(ctx, sc, p, col, s, replans); gone && err == nil {
				replans++
				goto steps
			}
			if err == nil {
				progress.Rows, err = sc.Import(ctx, r.dst, col.Database, col.Name, s.partition, s.coll, s.part, !stagedHere)
			}
			if se := (*domain.StepError)(nil); err != nil && !errors.As(err, &se) {
				err = &domain.StepError{Reason: "import_failed", Err: fmt.Errorf("%s partition %s: %w", col.Key(), s.partition, err)}
			}
		}
		if err != nil {
			return err
		}
		if err := r.checkpoint(ctx, progress); err != nil {
			return err
		}
		if s.kind == domain.ImportStep {
			_ = sc.Unstage(ctx, s.coll, s.part)
			msg := "partition imported"
			if r.helping {
				msg = "partition imported for the driving zdmd"
			}
			r.c.logger.Info(msg, "migration", r.m.ID, "collection", col.Key(), "partition", s.partition, "rows", progress.Rows,
				"files_copied_by_the_storage", sc.ServerSide.Load(), "files_streamed", sc.Streamed.Load())
		}
	}
	return nil
}

// partitionsOf lists the partitions of a segment copy's plan, in plan
// order.
func partitionsOf(planned []string) ([]int64, error) {
	var parts []int64
	for _, name := range planned {
		s, err := parseStep(name)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(parts, s.part) {
			parts = append(parts, s.part)
		}
	}
	return parts, nil
}

// stepsOf is a partition's steps in a plan, in order.
func stepsOf(planned []string, part int64) []string {
	var steps []string
	for _, name := range planned {
		if s, err := parseStep(name); err == nil && s.part == part {
			steps = append(steps, name)
		}
	}
	return steps
}

// importOf names a partition's import step in a plan.
func importOf(planned []string, part int64) string {
	for _, name := range stepsOf(planned, part) {
		if s, _ := parseStep(name); s.kind == domain.ImportStep {
			return name
		}
	}
	return ""
}

// maxReplans bounds how often a collection's partitions are listed again
// after segments listed were compacted away: a source that compacts
// faster than zdm stages is copied by rows instead.
const maxReplans = 5

// planOf is the segment copy's steps for a listing: each partition's
// segments, then its import. With only, the steps of that partition of
// the listing replace its steps in p's plan, in place.
func planOf(p *domain.CollectionProgress, listing segcopy.Listing, only *int64) domain.CollectionPlan {
	cp := domain.CollectionPlan{Database: p.Database, Collection: p.Collection}
	slices.SortFunc(listing.Partitions, func(a, b segcopy.Partition) int { return cmp.Compare(a.ID, b.ID) })
	partSteps := map[int64][]string{}
	for _, part := range listing.Partitions {
		if len(part.Segments) == 0 {
			continue
		}
		for _, s := range part.Segments {
			partSteps[part.ID] = append(partSteps[part.ID], step{kind: domain.SegmentStep, coll: listing.Collection, part: part.ID, seg: s.ID}.String())
			cp.Rows += s.Rows
		}
		partSteps[part.ID] = append(partSteps[part.ID], step{kind: domain.ImportStep, coll: listing.Collection, part: part.ID, partition: part.Name}.String())
		if only == nil {
			cp.Ranges = append(cp.Ranges, partSteps[part.ID]...)
		}
	}
	if only == nil {
		return cp
	}
	placed := false
	for _, name := range p.Planned {
		s, err := parseStep(name)
		if err != nil || s.part != *only {
			cp.Ranges = append(cp.Ranges, name)
			continue
		}
		if !placed {
			cp.Ranges = append(cp.Ranges, partSteps[*only]...)
			placed = true
		}
	}
	return cp
}

// replan lists a collection again after a segment of partition part was
// found gone, drops what was staged of that partition, and records the
// partition's new steps; it returns the collection's new plan.
func (r preparer) replan(ctx context.Context, sc *segcopy.Copier, p *domain.CollectionProgress, col *milvus.Collection, coll, part int64, why string) error {
	if err := sc.Unstage(ctx, coll, part); err != nil {
		return fmt.Errorf("%s: drop the staged segments of partition %d: %w", col.Key(), part, err)
	}
	listing, err := segcopy.List(ctx, r.src, col.Database, col.Name)
	if err != nil {
		return err
	}
	cp := planOf(p, listing, &part)
	prefix := fmt.Sprintf("%d/%d", coll, part)
	if err := r.checkpoint(ctx, domain.BulkCopyProgressed{Database: p.Database, Collection: p.Collection, Plan: &cp, Replanned: prefix}); err != nil {
		return err
	}
	p.Planned = cp.Ranges
	for name := range p.DoneRanges {
		if strings.HasPrefix(name, domain.SegmentStep+"/"+prefix+"/") {
			delete(p.DoneRanges, name)
		}
	}
	r.c.logger.Info(why+"; its partition was listed again", "collection", col.Key(), "partition", part)
	return nil
}
