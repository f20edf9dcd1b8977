package milvus

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// queryWindow is the most rows Milvus returns for one query (16384 by default).
const queryWindow = 16384

// Report compares two clusters.
type Report struct {
	Equal       bool               `json:"equal"`
	Structure   []string           `json:"structure_differences,omitempty"`
	Collections []CollectionReport `json:"collections"`
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
	Equal          bool     `json:"equal"`
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
		return fmt.Sprintf("all %d collections equal (%d rows compared)", len(r.Collections), rows)
	}
	return strings.Join(parts, "; ")
}

// VerifyOptions tunes a verification.
type VerifyOptions struct {
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
func Verify(ctx context.Context, src, dst *Conn, opt VerifyOptions) (*Report, error) {
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
	targets := map[string]*Collection{}
	for _, d := range dinv.Databases {
		for i := range d.Collections {
			targets[d.Collections[i].Key()] = &d.Collections[i]
		}
	}
	type pair struct{ s, t *Collection }
	var pairs []pair
	for _, d := range sinv.Databases {
		for i := range d.Collections {
			s := &d.Collections[i]
			t, ok := targets[s.Key()]
			delete(targets, s.Key())
			if !ok {
				rep.Structure = append(rep.Structure, "collection "+s.Key()+" is missing on the target")
				continue
			}
			rep.Structure = append(rep.Structure, structureDiff(s, t)...)
			pairs = append(pairs, pair{s, t})
		}
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

func structureDiff(s, t *Collection) []string {
	var out []string
	diff := func(what string, a, b any) {
		if fmt.Sprint(a) != fmt.Sprint(b) {
			out = append(out, fmt.Sprintf("%s: %s is %v on the source, %v on the target", s.Key(), what, a, b))
		}
	}
	diff("partitions", s.Partitions, t.Partitions)
	diff("aliases", s.Aliases, t.Aliases)
	diff("shards", s.ShardsNum, t.ShardsNum)
	diff("dynamic field", s.DynamicField, t.DynamicField)
	diff("consistency level", s.ConsistencyLevel, t.ConsistencyLevel)
	diff("properties", sortedPairs(s.Properties), sortedPairs(t.Properties))
	diff("description", s.Schema.GetDescription(), t.Schema.GetDescription())
	var si, ti []string
	for _, x := range s.Indexes {
		si = append(si, x.Name+":"+x.Field+":"+x.Params["index_type"]+":"+x.Params["metric_type"]+":"+x.Params["params"])
	}
	for _, x := range t.Indexes {
		ti = append(ti, x.Name+":"+x.Field+":"+x.Params["index_type"]+":"+x.Params["metric_type"]+":"+x.Params["params"])
	}
	diff("indexes", si, ti)
	var sf, tf []string
	for _, f := range s.Fields {
		sf = append(sf, fieldWords(f))
	}
	for _, f := range t.Fields {
		tf = append(tf, fieldWords(f))
	}
	diff("fields", sf, tf)
	return out
}

// fieldWords is everything a field is created with, but autoID, which a
// migration that preserves keys changes on purpose.
func fieldWords(f Field) string {
	w := f.Name + ":" + f.Type
	if f.ElementType != "" {
		w += "<" + f.ElementType + ">"
	}
	for _, p := range []struct {
		name string
		v    int64
	}{{"dim", f.Dim}, {"max_length", f.MaxLength}, {"max_capacity", f.MaxCapacity}} {
		if p.v != 0 {
			w += fmt.Sprintf(" %s=%d", p.name, p.v)
		}
	}
	if f.PrimaryKey {
		w += " primary"
	}
	if f.PartitionKey {
		w += " partition-key"
	}
	if f.Description != "" {
		w += fmt.Sprintf(" %q", f.Description)
	}
	return w
}

// sortedPairs lists a collection's properties but zdm's own mark.
func sortedPairs(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		if k != KeptAutoIDProperty {
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return out
}

// verifyRows walks the source's keys in order, one page at a time, and
// compares each page with the target's rows of the same key range.
func verifyRows(ctx context.Context, src, dst *Conn, s, t *Collection, opt VerifyOptions) (CollectionReport, error) {
	cr := CollectionReport{Database: s.Database, Collection: s.Name}
	for _, side := range []struct {
		c   *Conn
		col *Collection
	}{{src, s}, {dst, t}} {
		if !side.col.Loaded {
			if err := side.c.Load(ctx, side.col.Database, side.col.Name); err != nil {
				return cr, err
			}
			defer func(c *Conn, col *Collection) { _ = c.Release(context.WithoutCancel(ctx), col.Database, col.Name) }(side.c, side.col)
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
	fields := outputFields(s)
	note := func(format string, args ...any) {
		if len(cr.Mismatches) < opt.MaxMismatches {
			cr.Mismatches = append(cr.Mismatches, fmt.Sprintf(format, args...))
		}
	}
	all := KeyRange{}
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
			n := Rows(page)
			if err != nil || n < opt.PageRows {
				return
			}
			last := KeysOf(Column(page, pk.GetName())).Strings()[n-1]
			next = &last
		}
	}()
	var cursor *string
	for sp := range pages {
		page, err := sp.cols, sp.err
		if err != nil {
			return cr, err
		}
		n := Rows(page)
		r := all
		r.Gt = cursor
		if n == opt.PageRows {
			last := KeysOf(Column(page, pk.GetName())).Strings()[n-1]
			r.Le = &last
		}
		expr, limit := r.Expr(pk, cursor), int64(0)
		if expr == "" {
			// Milvus takes an empty expression only with a limit; beyond
			// its query window, extra target rows still show in the counts.
			limit = queryWindow
		}
		other, err := dst.QueryAt(ctx, t.Database, t.Name, expr, fields, nil, limit, dstTS)
		if err != nil {
			return cr, err
		}
		sh, th := rowHashes(page, pk.GetName(), s.Schema), rowHashes(other, pk.GetName(), s.Schema)
		cr.Ranges++
		if !sameHashes(sh, th) {
			cr.RangesDiffer++
			compareHashes(&cr, sh, th, note, fieldsDiffering(page, other, pk.GetName(), s.Schema))
		}
		cr.RowsCompared += int64(n)
		cr.VectorsSampled += sampleVectors(page, other, pk.GetName(), opt.SampleEvery, &cr, note)
		if r.Le == nil {
			break
		}
		cursor = r.Le
	}
	sort.Strings(cr.Mismatches)
	cr.Equal = cr.SourceRows == cr.TargetRows && cr.RangesDiffer == 0 && cr.Missing == 0 && cr.Extra == 0 && cr.Different == 0
	return cr, nil
}

// compareHashes counts, and notes, the keys of the source rows sh missing
// on the target, those whose rows differ, and the target rows th that are
// not on the source.
// A row that differs is named with its fields that do, when fields (which
// may be nil) tells them.
func compareHashes(cr *CollectionReport, sh, th map[string]uint64, note func(format string, args ...any), fields func(key string) []string) {
	for k, h := range sh {
		switch th2, ok := th[k]; {
		case !ok:
			cr.Missing++
			note("%s missing on the target", k)
		case th2 != h && fields != nil:
			cr.Different++
			note("%s differs in %s", k, strings.Join(fields(k), ", "))
		case th2 != h:
			cr.Different++
			note("%s differs", k)
		}
	}
	for k := range th {
		if _, ok := sh[k]; !ok {
			cr.Extra++
			note("%s only on the target", k)
		}
	}
}

// fieldsDiffering returns what names, for a key two pages both hold, the
// fields whose values of it differ; the pages' keys are indexed once, on
// the first key asked about.
func fieldsDiffering(a, b []*schemapb.FieldData, pk string, schema *schemapb.CollectionSchema) func(key string) []string {
	var ia, ib map[string]int
	names := append(fieldNames(schema), DynamicFieldName)
	return func(k string) []string {
		if ia == nil {
			ia, ib = rowIndex(a, pk), rowIndex(b, pk)
		}
		var out []string
		for _, name := range names {
			ca, cb := Column(a, name), Column(b, name)
			if ca == nil && cb == nil {
				continue
			}
			if ca == nil || cb == nil || !bytes.Equal(cellBytes(ca, ia[k]), cellBytes(cb, ib[k])) {
				out = append(out, name)
			}
		}
		return out
	}
}

// rowIndex maps each key of a page to its row.
func rowIndex(cols []*schemapb.FieldData, pk string) map[string]int {
	keys := KeysOf(Column(cols, pk)).Strings()
	out := make(map[string]int, len(keys))
	for i, k := range keys {
		out[k] = i
	}
	return out
}

func fieldNames(schema *schemapb.CollectionSchema) []string {
	names := []string{}
	for _, f := range schema.GetFields() {
		names = append(names, f.GetName())
	}
	return names
}

func sameHashes(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// rowHashes hashes every row over every field in schema order; vectors
// and floats by their bits, JSON in a canonical form.
func rowHashes(cols []*schemapb.FieldData, pk string, schema *schemapb.CollectionSchema) map[string]uint64 {
	keys := KeysOf(Column(cols, pk)).Strings()
	out := make(map[string]uint64, len(keys))
	names := append(fieldNames(schema), DynamicFieldName)
	for i, k := range keys {
		h := fnv.New64a()
		for _, name := range names {
			if c := Column(cols, name); c != nil {
				h.Write([]byte(name))
				h.Write(cellBytes(c, i))
			}
		}
		out[k] = h.Sum64()
	}
	return out
}

// cellBytes encodes row i of a column.
func cellBytes(c *schemapb.FieldData, i int) []byte {
	b := make([]byte, 0, 64)
	if s := c.GetScalars(); s != nil {
		if a := s.GetArrayData(); a != nil {
			// The element count, then each element, so that no two
			// arrays encode alike.
			row := a.GetData()[i]
			n := max(0, columnLen(&schemapb.FieldData{Field: &schemapb.FieldData_Scalars{Scalars: row}}))
			b = binary.LittleEndian.AppendUint32(b, uint32(n))
			for j := range n {
				b = scalarBytes(b, row, j, true)
			}
			return b
		}
		return scalarBytes(b, s, i, false)
	}
	v := c.GetVectors()
	dim := int(v.GetDim())
	if f := v.GetFloatVector(); f != nil {
		for _, x := range f.GetData()[i*dim : (i+1)*dim] {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
		return b
	}
	bv := v.GetBinaryVector()
	return append(b, bv[i*dim/8:(i+1)*dim/8]...)
}

// scalarBytes appends value i of s to b; a text is preceded by its length
// when it is one element of several.
func scalarBytes(b []byte, s *schemapb.ScalarField, i int, sized bool) []byte {
	switch {
	case s.GetLongData() != nil:
		return binary.LittleEndian.AppendUint64(b, uint64(s.GetLongData().GetData()[i]))
	case s.GetIntData() != nil:
		return binary.LittleEndian.AppendUint32(b, uint32(s.GetIntData().GetData()[i]))
	case s.GetStringData() != nil:
		v := s.GetStringData().GetData()[i]
		if sized {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
		}
		return append(b, v...)
	case s.GetBoolData() != nil:
		if s.GetBoolData().GetData()[i] {
			return append(b, 1)
		}
		return append(b, 0)
	case s.GetFloatData() != nil:
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(s.GetFloatData().GetData()[i]))
	case s.GetDoubleData() != nil:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(s.GetDoubleData().GetData()[i]))
	case s.GetJsonData() != nil:
		var v any
		raw := s.GetJsonData().GetData()[i]
		if json.Unmarshal(raw, &v) == nil {
			raw, _ = json.Marshal(v)
		}
		return append(b, raw...)
	}
	return b
}

// sampleVectors compares the vectors of every n-th row bit for bit.
func sampleVectors(src, dst []*schemapb.FieldData, pk string, every int, cr *CollectionReport, note func(string, ...any)) int {
	dstKeys := KeysOf(Column(dst, pk)).Strings()
	at := map[string]int{}
	for i, k := range dstKeys {
		at[k] = i
	}
	sampled := 0
	for i, k := range KeysOf(Column(src, pk)).Strings() {
		if i%every != 0 {
			continue
		}
		j, ok := at[k]
		if !ok {
			continue
		}
		for _, c := range src {
			if c.GetVectors() == nil {
				continue
			}
			d := Column(dst, c.GetFieldName())
			if d == nil || !slices.Equal(cellBytes(c, i), cellBytes(d, j)) {
				note("%s vector %s differs", k, c.GetFieldName())
			}
		}
		sampled++
	}
	return sampled
}
