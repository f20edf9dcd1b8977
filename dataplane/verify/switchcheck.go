package verify

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"golang.org/x/sync/errgroup"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// QuickCheck compares, per collection and all in parallel (writes are held
// meanwhile), the row counts and the first sampleRows rows in key order,
// every field. It reads through the sync's own connections: dialling while
// writes are held would lengthen the pause.
func QuickCheck(ctx context.Context, src, target *milvus.Conn) (*Report, error) {
	return QuickCheckOf(ctx, src, target, nil, nil)
}

// Described remembers the loaded collections a quick check described, so
// that the check made while writes are held asks the source only for rows:
// writes, the structure's changes included, are held meanwhile, and on a
// server with many collections every call waits its turn.
type Described struct {
	mu sync.Mutex
	by map[[2]string]*milvus.Collection
}

// NewDescribed returns an empty Described.
func NewDescribed() *Described { return &Described{by: map[[2]string]*milvus.Collection{}} }

func (d *Described) get(db, coll string) *milvus.Collection {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.by[[2]string{db, coll}]
}

// Forget drops what is known of a collection whose structure may have
// changed.
func (d *Described) Forget(db, coll string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.by, [2]string{db, coll})
}

func (d *Described) put(c *milvus.Collection) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.by[[2]string{c.Database, c.Name}] = c
}

// quickParallel bounds the collections a quick check reads at once: a
// source with a thousand collections must not get a thousand queries in
// one burst.
const quickParallel = 16

// quickMismatches bounds the keys a quick check names per collection.
const quickMismatches = 20

// QuickCheckOf is QuickCheck of the source's collections that include
// accepts (nil: every one); include is asked about each collection the
// source lists. known, if not nil, gives the collections an earlier check
// described and keeps those this one describes.
func QuickCheckOf(ctx context.Context, src, target *milvus.Conn, include func(db, coll string) bool, known *Described) (*Report, error) {
	return QuickCheckWith(ctx, src, target, QuickOptions{Include: include, Known: known})
}

// QuickOptions shape a quick check.
type QuickOptions struct {
	// Include and Known are QuickCheckOf's.
	Include func(db, coll string) bool
	Known   *Described
	// Keep: where the counts are explained by walking the keys, the
	// collection's report keeps what the walk found (the check made
	// before writes are held; heldkeys.go).
	Keep bool
	// Held, for the check made while writes are held, gives a
	// collection's report from the check before the hold and the keys
	// written through the proxy since that check began (ok false: not
	// known, a DDL or a delete by a filter among them).
	Held func(db, coll string) (pre *CollectionReport, written []string, ok bool)
	// Held, or OneClock: writes are held, and each side is read at a
	// clock taken once (heldClocks).
	OneClock bool
	// First names collections to read while the source is listed, as
	// [database, collection]: those the caller knows include takes.
	First [][2]string
	// WrittenOnly, with Held, names the collections the check before the
	// hold found equal and that only writes of keys Held gives changed
	// since: of those, the counts and the rows written are read, not the
	// sample, whose rows that check compared and no write touched.
	WrittenOnly func(db, coll string) bool
}

// QuickCheckWith is QuickCheck shaped by o.
func QuickCheckWith(ctx context.Context, src, target *milvus.Conn, o QuickOptions) (*Report, error) {
	var at clocks
	if o.Held != nil || o.OneClock {
		at = heldClocks(ctx, src, target)
	}
	// The collections the caller knows it must read are read while the
	// source is listed: on a source of a thousand collections the listing
	// can take as long as the reads, and writes are held meanwhile. A result
	// counts only for a collection the listing has and include takes; a
	// collection dropped meanwhile fails its reads, and is left out.
	early := startReads(ctx, src, target, o.First, o, at)
	names, err := listIncluded(ctx, src, o.Include)
	got := early()
	if err != nil {
		return nil, err
	}
	var rest [][2]string
	for _, n := range names {
		if _, ok := got[n]; !ok {
			rest = append(rest, n)
		}
	}
	maps.Copy(got, startReads(ctx, src, target, rest, o, at)())
	rep := &Report{Equal: true, Collections: []CollectionReport{}}
	for _, n := range names {
		switch r := got[n]; {
		case r.err != nil:
			return rep, r.err
		case r.loaded:
			rep.Collections = append(rep.Collections, r.report)
			rep.Equal = rep.Equal && r.report.Equal
		default:
			rep.NotLoaded = append(rep.NotLoaded, n[0]+"/"+n[1])
		}
	}
	sort.Strings(rep.NotLoaded)
	sort.Slice(rep.Collections, func(i, j int) bool {
		return rep.Collections[i].Database+"/"+rep.Collections[i].Collection < rep.Collections[j].Database+"/"+rep.Collections[j].Collection
	})
	return rep, nil
}

// listIncluded lists the source's collections that include takes (nil:
// every one), asking it once about each. The databases are listed at
// once, and include is asked in their order.
func listIncluded(ctx context.Context, src *milvus.Conn, include func(db, coll string) bool) ([][2]string, error) {
	dbs, err := src.Databases(ctx)
	if err != nil {
		return nil, err
	}
	colls := make([][]string, len(dbs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(quickParallel)
	for i, db := range dbs {
		g.Go(func() (err error) {
			colls[i], err = src.CollectionNames(gctx, db)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var names [][2]string
	for i, db := range dbs {
		for _, c := range colls[i] {
			if include == nil || include(db, c) {
				names = append(names, [2]string{db, c})
			}
		}
	}
	return names, nil
}

// quickResult is one collection's comparison.
type quickResult struct {
	report CollectionReport
	loaded bool
	err    error
}

// startReads compares names, at most quickParallel at once; the function
// it returns waits for them and gives each one's result.
func startReads(ctx context.Context, src, target *milvus.Conn, names [][2]string, o QuickOptions, at clocks) func() map[[2]string]quickResult {
	const sampleRows = 500
	got := make(map[[2]string]quickResult, len(names))
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, quickParallel)
	for _, n := range names {
		// Each waits for its slot in its own goroutine: the caller goes
		// on at once, to list the source.
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			cr, loaded, err := sampleCompare(ctx, src, target, n[0], n[1], sampleRows, o, at)
			mu.Lock()
			defer mu.Unlock()
			got[n] = quickResult{cr, loaded, err}
		})
	}
	return func() map[[2]string]quickResult {
		wg.Wait()
		return got
	}
}

// clocks are the timestamps a check reads each side at (0: strong reads).
type clocks struct{ src, dst uint64 }

// heldClocks takes each side's clock once for the check made while writes
// are held: every write acknowledged before the hold is stamped earlier,
// so reads at them see what strong reads would. Its reads come in rounds
// (the counts and samples, then the keys held twice where the counts
// differ), and each round of strong reads waited for the servers' next
// time tick, 200-400 ms here; at a clock taken once only the first round
// does. A side that cannot give its clock is read strongly.
func heldClocks(ctx context.Context, src, dst *milvus.Conn) clocks {
	var at clocks
	var wg sync.WaitGroup
	wg.Go(func() { at.src, _ = src.AllocTimestamp(ctx) })
	wg.Go(func() { at.dst, _ = dst.AllocTimestamp(ctx) })
	wg.Wait()
	return at
}

func sampleCompare(ctx context.Context, src, dst *milvus.Conn, db, name string, n int, o QuickOptions, at clocks) (CollectionReport, bool, error) {
	cr := CollectionReport{Database: db, Collection: name, Ranges: 1}
	known := o.Known
	c := known.get(db, name)
	if c == nil {
		in := src.In(ctx, db)
		ls, err := src.Svc.GetLoadState(in, &milvuspb.GetLoadStateRequest{DbName: db, CollectionName: name})
		if err := milvus.Check("load state "+name, ls.GetStatus(), err); err != nil {
			return cr, false, err
		}
		if ls.GetState() != commonpb.LoadState_LoadStateLoaded {
			return cr, false, nil // not queryable; the full verification loads it
		}
		d, err := src.Svc.DescribeCollection(in, &milvuspb.DescribeCollectionRequest{DbName: db, CollectionName: name})
		if err := milvus.Check("describe collection "+name, d.GetStatus(), err); err != nil {
			return cr, false, err
		}
		c = &milvus.Collection{Database: db, Name: name, Schema: d.GetSchema(), DynamicField: d.GetSchema().GetEnableDynamicField(), Loaded: true,
			Properties: milvus.KVMap(d.GetProperties())}
		known.put(c)
	}
	// Writes are held while this runs: counts and samples of both sides
	// are read at once, in one round of reads. Each sample is the n
	// smallest keys, as every query with a limit returns them (the copy
	// pages the same way).
	pk, fields := c.PrimaryField(), milvus.OutputFields(c)
	var pre *CollectionReport
	var written []string
	knownWrites := false
	if o.Held != nil {
		pre, written, knownWrites = o.Held(db, name)
	}
	var page, other []*schemapb.FieldData
	var wsh, wth map[string]uint64
	from, to := sideOf{src, db, name, at.src}, sideOf{dst, db, name, at.dst}
	g, gctx := errgroup.WithContext(ctx)
	// While writes are held, the rows written since the check before the
	// hold are read too, every field: the sample holds the smallest keys,
	// and a write replayed wrong under a larger key leaves the counts and
	// the sample equal.
	reread, all := lastWritten(written, writtenRowsMax)
	sample := !(all && len(reread) > 0 && knownWrites && o.WrittenOnly != nil && o.WrittenOnly(db, name))
	if knownWrites && len(reread) > 0 {
		cr.WrittenRowsRead = len(reread)
		g.Go(func() (err error) { wsh, err = from.keyHashes(gctx, pk, c.Schema, reread, fields, nil); return err })
		g.Go(func() (err error) { wth, err = to.keyHashes(gctx, pk, c.Schema, reread, fields, nil); return err })
	}
	g.Go(func() (err error) { cr.SourceRows, err = src.CountAt(gctx, db, name, "", at.src); return err })
	g.Go(func() (err error) { cr.TargetRows, err = dst.CountAt(gctx, db, name, "", at.dst); return err })
	if sample {
		g.Go(func() (err error) {
			page, err = src.QueryAt(gctx, db, name, "", fields, nil, int64(n), at.src)
			return err
		})
		g.Go(func() (err error) {
			other, err = dst.QueryAt(gctx, db, name, "", fields, nil, int64(n), at.dst)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return cr, true, err
	}
	sh, th := rowHashes(page, pk.GetName(), c.Schema), rowHashes(other, pk.GetName(), c.Schema)
	commonSpan(sh, th, milvus.KeysOf(milvus.Column(page, pk.GetName())), milvus.KeysOf(milvus.Column(other, pk.GetName())))
	maps.Copy(sh, wsh)
	maps.Copy(th, wth)
	st, err := settleSplitKeys(ctx, from, to, c, fields, sh, th)
	if err != nil {
		return cr, true, err
	}
	cr.SplitKeys, cr.AgainKeys = len(st.split), len(st.again)
	compareHashes(&cr, sh, th, func(format string, args ...any) {
		if len(cr.Mismatches) < quickMismatches {
			cr.Mismatches = append(cr.Mismatches, fmt.Sprintf(format, args...))
		}
	}, nil)
	if sampledDiffer(cr) > 0 {
		cr.RangesDiffer = 1
	}
	cr.RowsCompared, cr.VectorsSampled = int64(len(sh)), len(sh)
	cr.Equal = cr.SourceRows == cr.TargetRows && sampledDiffer(cr) == 0
	if cr.Expires = c.Expires(); cr.Expires && !cr.Equal && cr.Missing+cr.Different == 0 && cr.Extra > 0 {
		// Rows only the target holds, in a collection whose rows expire:
		// the walk names every one, and tells those the source's
		// compaction removed apart from differences (expired.go).
		cr.Extra, cr.Mismatches, cr.RangesDiffer = 0, nil, 0
	}
	if !cr.Equal && sampledDiffer(cr) == 0 {
		// Only here, where the counts alone differ, are keys read: those
		// the check before the hold points to, or else every key.
		if o.Keep {
			// Before the hold, with writes flowing: read at a timestamp
			// taken now, so that only the walk's first read waits for
			// the server's next time tick, not every count that locates
			// a key held twice.
			from.ts, _ = src.ReadTimestamp(ctx, db, name)
			to.ts, _ = dst.ReadTimestamp(ctx, db, name)
		}
		if knownWrites {
			if settled, err := settleHeld(ctx, &cr, pk, from, to, pre, written); settled || err != nil {
				return cr, true, err
			}
		}
		cr.Equal, err = explainCounts(ctx, &cr, c, from, to, quickMismatches, o.Keep)
		if err == nil && !cr.Equal && expiredOnSource(&cr, written) {
			cr.Equal = true
		}
		return cr, true, err
	}
	return cr, true, nil
}

// sampledDiffer counts the sampled rows missing, different or extra.
func sampledDiffer(c CollectionReport) int { return c.Missing + c.Different + c.Extra }

// commonSpan drops from both samples the keys past the smaller of their
// last keys. Each side returned its smallest keys, but only up to there
// did both return every key they hold: a key held twice counts twice
// against the limit and comes back once, so one side's sample can end
// short of the other's. The counts speak for the keys past it.
func commonSpan(sh, th map[string]uint64, a, b milvus.Keys) {
	if len(a.Ints) > 0 && len(b.Ints) > 0 {
		trimPast(sh, th, a.Ints, b.Ints, func(k int64) string { return strconv.FormatInt(k, 10) })
	}
	if len(a.Strs) > 0 && len(b.Strs) > 0 {
		trimPast(sh, th, a.Strs, b.Strs, func(k string) string { return k })
	}
}

func trimPast[K cmp.Ordered](sh, th map[string]uint64, a, b []K, text func(K) string) {
	bound := min(slices.Max(a), slices.Max(b))
	for _, side := range []struct {
		keys []K
		h    map[string]uint64
	}{{a, sh}, {b, th}} {
		for _, k := range side.keys {
			if k > bound {
				delete(side.h, text(k))
			}
		}
	}
}
