package verify

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"golang.org/x/sync/errgroup"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// Report compares two clusters.
type Report struct {
	Equal       bool               `json:"equal"`
	Structure   []string           `json:"structure_differences,omitempty"`
	Collections []CollectionReport `json:"collections"`
	// NotLoaded names the collections whose rows were not compared because
	// the source does not have them loaded (a quick check), or cannot load
	// them for want of an index (database/collection).
	NotLoaded []string `json:"not_loaded,omitempty"`
}

// CollectionReport compares one collection.
type CollectionReport struct {
	Database       string   `json:"database"`
	Collection     string   `json:"collection"`
	SourceRows     int64    `json:"source_rows"`
	TargetRows     int64    `json:"target_rows"`
	Ranges         int      `json:"ranges"`
	RangesDiffer   int      `json:"ranges_differ"`
	RowsCompared   int64    `json:"rows_compared"`
	VectorsSampled int      `json:"vectors_sampled"`
	Missing        int      `json:"missing_on_target"`
	Extra          int      `json:"extra_on_target"`
	Different      int      `json:"different"`
	Mismatches     []string `json:"mismatched_keys,omitempty"`
	// SourceDuplicates is how many of the source's rows are under a key
	// it already holds: inserts a client repeated (see duplicates.go).
	// They are counted only when the row counts differ and no row does.
	SourceDuplicates int64 `json:"source_duplicate_rows,omitempty"`
	// TargetDuplicates is the same on the target, where it is a
	// difference.
	TargetDuplicates int64 `json:"target_duplicate_rows,omitempty"`
	// HeldKeysRead is how many keys the check made while writes were held
	// read one by one to explain the counts, instead of walking every key
	// (heldkeys.go).
	HeldKeysRead int `json:"held_keys_read,omitempty"`
	// WrittenRowsRead is how many rows written since the check before
	// the hold the check while writes were held read whole.
	WrittenRowsRead int `json:"written_rows_read,omitempty"`
	// SplitKeys is how many keys, held in several partitions on both
	// sides, were compared partition by partition (splitkeys.go).
	SplitKeys int `json:"keys_in_several_partitions,omitempty"`
	// AgainKeys is how many keys whose rows differ the source holds in
	// several rows, inserted again with other values (again.go).
	AgainKeys int  `json:"keys_inserted_again,omitempty"`
	Equal     bool `json:"equal"`
	// OnlyOnTarget, where a walk of the keys found the target holding
	// keys the source does not and named every one of them, lists those
	// keys. In a collection whose rows expire (Expires), they are the
	// rows the source's compaction removed after their time to live.
	OnlyOnTarget []string `json:"-"`
	// Expires says that the source's collection has a time to live, and
	// ExpiredOnSource how many rows the target alone holds for that
	// reason (expiredOnSource), which are no difference.
	Expires         bool `json:"-"`
	ExpiredOnSource int  `json:"expired_on_source,omitempty"`
	// ExpiredRemoved says that the switch deleted those rows from the
	// target (RemoveExpired).
	ExpiredRemoved bool `json:"expired_removed,omitempty"`
	// ExpiredRemovedEarly is how many such rows the switch deleted from
	// the target before it held writes (RemoveGone): found by its sweep
	// or by the check before the hold.
	ExpiredRemovedEarly int `json:"expired_removed_before_hold,omitempty"`
	// ledger is what a check before the hold found walking the keys.
	ledger *keyLedger
}

// Summary says in one line what a verification found: the collections
// that differ and how, or that all were equal.
func (r *Report) Summary() string {
	var parts []string
	var rows int64
	for _, c := range r.Collections {
		rows += c.RowsCompared
		if c.Equal {
			continue
		}
		s := fmt.Sprintf("%s/%s: rows %d on the source, %d on the target", c.Database, c.Collection, c.SourceRows, c.TargetRows)
		if c.TargetDuplicates > 0 {
			s += fmt.Sprintf(", %d of them under keys the target already holds", c.TargetDuplicates)
		}
		if c.RangesDiffer > 0 {
			s += fmt.Sprintf(", %d of %d key ranges differ", c.RangesDiffer, c.Ranges)
		}
		if n := sampledDiffer(c); n > 0 {
			s += fmt.Sprintf(" (%d missing, %d extra, %d different", c.Missing, c.Extra, c.Different)
			if m := c.Mismatches; len(m) > 0 {
				if len(m) > 3 {
					m = append(m[:3:3], "...")
				}
				s += ": " + strings.Join(m, ", ")
			}
			s += ")"
		}
		parts = append(parts, s)
	}
	parts = append(parts, r.Structure...)
	if len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("all %d collections equal (%d rows compared)", len(r.Collections), rows))
	}
	if len(r.NotLoaded) > 0 {
		parts = append(parts, fmt.Sprintf("rows of %d not compared, not loaded on the source: %s", len(r.NotLoaded), strings.Join(r.NotLoaded, ", ")))
	}
	for _, note := range []string{r.writtenNote(), r.duplicatesNote(), r.splitNote(), r.againNote(), r.expiredNote()} {
		if note != "" {
			parts = append(parts, note)
		}
	}
	return strings.Join(parts, "; ")
}

// Options tunes a verification.
type Options struct {
	// PageRows is the rows of one checksummed range.
	PageRows int
	// SampleEvery compares every n-th row's vectors one by one (on top of
	// the checksums, which cover them too); 0: 100.
	SampleEvery int
	// MaxMismatches bounds the keys listed per collection.
	MaxMismatches int
	// Parallel collections are compared at once (default 4).
	Parallel int
}

// Verify compares every collection of src with dst: structure, row
// counts, a checksum of every range of keys over every field, and sampled
// vectors. Collections not loaded are loaded for it and released after.
func Verify(ctx context.Context, src, dst *milvus.Conn, opt Options) (*Report, error) {
	if opt.PageRows <= 0 {
		opt.PageRows = 2000
	}
	if opt.SampleEvery <= 0 {
		opt.SampleEvery = 100
	}
	if opt.MaxMismatches <= 0 {
		opt.MaxMismatches = 20
	}
	if opt.Parallel <= 0 {
		opt.Parallel = 4
	}
	sinv, err := src.Outline(ctx)
	if err != nil {
		return nil, fmt.Errorf("source inventory: %w", err)
	}
	dinv, err := dst.Outline(ctx)
	if err != nil {
		return nil, fmt.Errorf("target inventory: %w", err)
	}
	rep := &Report{Equal: true, Collections: []CollectionReport{}}
	targets := map[string]*milvus.Collection{}
	for t := range dinv.All() {
		targets[t.Key()] = t
	}
	type pair struct{ s, t *milvus.Collection }
	var pairs []pair
	for s := range sinv.All() {
		t, ok := targets[s.Key()]
		delete(targets, s.Key())
		if !ok {
			rep.Structure = append(rep.Structure, "collection "+s.Key()+" is missing on the target")
			continue
		}
		rep.Structure = append(rep.Structure, structureDiff(s, t)...)
		if !s.Loadable() {
			// Made without an index while the migration ran (the
			// preflight refuses such a source): no one can read its
			// rows until it has one, zdm included.
			rep.NotLoaded = append(rep.NotLoaded, s.Key())
			continue
		}
		pairs = append(pairs, pair{s, t})
	}
	// Collections are compared in parallel; the report keeps their order.
	reports := make([]CollectionReport, len(pairs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opt.Parallel)
	for i, p := range pairs {
		g.Go(func() error {
			cr, err := verifyRows(gctx, src, dst, p.s, p.t, opt)
			if err != nil {
				return fmt.Errorf("verify %s: %w", p.s.Key(), err)
			}
			reports[i] = cr
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, cr := range reports {
		rep.Equal = rep.Equal && cr.Equal
		rep.Collections = append(rep.Collections, cr)
	}
	extra := make([]string, 0, len(targets))
	for k := range targets {
		extra = append(extra, "collection "+k+" exists only on the target")
	}
	sort.Strings(extra)
	rep.Structure = append(rep.Structure, extra...)
	rep.Equal = rep.Equal && len(rep.Structure) == 0
	return rep, nil
}

// verifyRows walks the source's keys in order, one page at a time, and
// compares each page with the target's rows of the same key range.
func verifyRows(ctx context.Context, src, dst *milvus.Conn, s, t *milvus.Collection, opt Options) (CollectionReport, error) {
	cr := CollectionReport{Database: s.Database, Collection: s.Name}
	for _, side := range []struct {
		c   *milvus.Conn
		col *milvus.Collection
	}{{src, s}, {dst, t}} {
		if !side.col.Loaded {
			if err := side.c.Load(ctx, side.col.Database, side.col.Name); err != nil {
				return cr, err
			}
			defer func(c *milvus.Conn, col *milvus.Collection) {
				_ = c.Release(context.WithoutCancel(ctx), col.Database, col.Name)
			}(side.c, side.col)
		}
	}
	// Counts and pages are read at a timestamp taken now on each side:
	// they hold every write the side acknowledged before, as strong reads
	// would, and only the first read waits for the server's next time
	// tick. A side that gives no timestamp is read strongly (0).
	srcTS, _ := src.ReadTimestamp(ctx, s.Database, s.Name)
	dstTS, _ := dst.ReadTimestamp(ctx, t.Database, t.Name)
	var err error
	if cr.SourceRows, err = src.CountAt(ctx, s.Database, s.Name, "", srcTS); err != nil {
		return cr, err
	}
	if cr.TargetRows, err = dst.CountAt(ctx, t.Database, t.Name, "", dstTS); err != nil {
		return cr, err
	}
	pk := s.PrimaryField()
	fields := milvus.OutputFields(s)
	from, to := sideOf{src, s.Database, s.Name, srcTS}, sideOf{dst, t.Database, t.Name, dstTS}
	note := func(format string, args ...any) {
		if len(cr.Mismatches) < opt.MaxMismatches {
			cr.Mismatches = append(cr.Mismatches, fmt.Sprintf(format, args...))
		}
	}
	all := milvus.KeyRange{}
	// The source is read one page ahead, while the target is compared
	// with the page before.
	type sourcePage struct {
		cols []*schemapb.FieldData
		err  error
	}
	pages := make(chan sourcePage, 1)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		defer close(pages)
		var next *string
		for {
			page, err := src.QueryAt(rctx, s.Database, s.Name, all.Expr(pk, next), fields, nil, int64(opt.PageRows), srcTS)
			select {
			case pages <- sourcePage{page, err}:
			case <-rctx.Done():
				return
			}
			n := milvus.Rows(page)
			if err != nil || n == 0 {
				return
			}
			last := milvus.KeysOf(milvus.Column(page, pk.GetName())).Strings()[n-1]
			// A short page may not be the last (see milvus.LastPage). After
			// the last, an empty page: the target's keys past the source's
			// last are compared against nothing.
			end, err := src.LastPage(rctx, s.Database, s.Name, pk, nil, next, last, n, int64(opt.PageRows), srcTS)
			if err != nil || end {
				select {
				case pages <- sourcePage{nil, err}:
				case <-rctx.Done():
				}
				return
			}
			next = &last
		}
	}()
	var cursor *string
	for sp := range pages {
		page, err := sp.cols, sp.err
		if err != nil {
			return cr, err
		}
		n := milvus.Rows(page)
		r := all
		r.Gt = cursor
		if n > 0 {
			last := milvus.KeysOf(milvus.Column(page, pk.GetName())).Strings()[n-1]
			r.Le = &last
		}
		expr, limit := r.Expr(pk, cursor), int64(0)
		if expr == "" {
			// Milvus takes an empty expression only with a limit; beyond
			// its query window, extra target rows still show in the counts.
			limit = milvus.QueryWindow
		}
		other, err := dst.QueryAt(ctx, t.Database, t.Name, expr, fields, nil, limit, dstTS)
		if err != nil {
			return cr, err
		}
		sh, th := rowHashes(page, pk.GetName(), s.Schema), rowHashes(other, pk.GetName(), s.Schema)
		cr.Ranges++
		var st settled
		if !sameHashes(sh, th) {
			if st, err = settleSplitKeys(ctx, from, to, s, fields, sh, th); err != nil {
				return cr, err
			}
			cr.SplitKeys += len(st.split)
			cr.AgainKeys += len(st.again)
		}
		if !sameHashes(sh, th) {
			cr.RangesDiffer++
			compareHashes(&cr, sh, th, note, fieldsDiffering(page, other, pk.GetName(), s.Schema))
		}
		cr.RowsCompared += int64(n)
		cr.VectorsSampled += sampleVectors(page, other, pk.GetName(), opt.SampleEvery, st.all, note)
		if r.Le == nil {
			break
		}
		cursor = r.Le
	}
	sort.Strings(cr.Mismatches)
	cr.Equal = cr.SourceRows == cr.TargetRows && cr.RangesDiffer == 0 && sampledDiffer(cr) == 0
	if !cr.Equal && cr.RangesDiffer == 0 && sampledDiffer(cr) == 0 {
		cr.Equal, err = explainCounts(ctx, &cr, s, from, to, opt.MaxMismatches, false)
	}
	return cr, err
}
