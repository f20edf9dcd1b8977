package main

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/domain"
)

// benchCopy measures the bulk copy against its baselines.
func benchCopy(ctx context.Context, src, dst *milvus.Conn, col *milvus.Collection, quiet *slog.Logger) {
	usePageDefaults(col)
	// The shared machine is noisy and the server's state drifts (flushes,
	// compactions of the last run's data): every side runs `turns` times,
	// in turns, each after the servers went idle, and its median counts.
	const turns = 3
	type run struct {
		rate float64
		cpu  cpuRow
	}
	byRate := func(a, b run) int { return cmp.Compare(a.rate, b.rate) }
	var copies []zdmCopy
	var ceilings, naives []run
	var readRates []float64
	var peak uint64
	var w waits
	for range turns {
		must(dst.DropEverything(ctx)) // a target as a migration gets it: empty
		w.settle()
		z := copyWithZdm(ctx, src, dst, col, quiet)
		peak = max(peak, z.peak)
		copies = append(copies, z)
		w.settle()
		r, cpu := insertCeiling(ctx, dst, col)
		ceilings = append(ceilings, run{r, cpu})
		w.settle()
		naives = append(naives, run{rate: naiveCopy(ctx, src, dst, col)})
		w.settle()
		readRates = append(readRates, readCeiling(ctx, src, col))
	}
	slices.SortFunc(copies, func(a, b zdmCopy) int { return cmp.Compare(a.rate, b.rate) })
	slices.SortFunc(ceilings, byRate)
	slices.SortFunc(naives, byRate)
	mid, ceiling, naive := copies[turns/2], ceilings[turns/2], naives[turns/2]
	cfg := rowcopy.Config{Workers: workers, Readers: readers, PageRows: page, RangeRows: rangeRows}.WithDefaults()
	fmt.Printf("bulk copy of %d rows (%d dims): %d writers, %d readers, pages of %d rows, ranges of %d rows\n",
		*rows, *dim, cfg.Workers, cfg.Readers, cfg.PageRows, cfg.RangeRows)
	fmt.Printf("  every side is timed alike: from an empty target (the collection, its index and its load made inside the\n")
	fmt.Printf("  window) to the last row acknowledged; the median of %d runs each, in turns\n", turns)
	fmt.Printf("  zdm copier (reads at a timestamp, writes, checkpoints)          %9.0f rows/s\n", mid.rate)
	fmt.Printf("  ceiling (pre-built batches, same size and writers, no reads)    %9.0f rows/s\n", ceiling.rate)
	fmt.Printf("  naive (1 thread: read a page at a timestamp, insert it; all rows) %7.0f rows/s\n", naive.rate)
	fmt.Printf("  reads alone (the copy's reads, same readers, no writes)          %9.0f rows/s\n", median(readRates))
	fmt.Printf("  ratio zdm/ceiling %.2f (goal >= 0.8), zdm/naive %.2f; fastest against fastest %.2f and %.2f\n",
		mid.rate/ceiling.rate, mid.rate/naive.rate, copies[turns-1].rate/ceilings[turns-1].rate, copies[turns-1].rate/naives[turns-1].rate)
	fmt.Printf("  of the median copy's window, %.2f s went to making the collection, index and load before the first range\n", mid.make.Seconds())
	if mid.cpu.source > 0 && mid.cpu.target > 0 {
		fmt.Printf("  CPU per row over the same windows: the copy took %.1f us in zdm, %.1f us in the source (its reads), %.1f us\n",
			mid.cpu.self, mid.cpu.source, mid.cpu.target)
		fmt.Printf("    in the target (its writes); the ceiling %.1f us in the target. The servers share this machine's %d cores:\n",
			ceiling.cpu.target, runtime.NumCPU())
		bound := (ceiling.cpu.target + ceiling.cpu.self) / (mid.cpu.self + mid.cpu.source + mid.cpu.target)
		fmt.Printf("    if CPU is what bounds both, the cores allow zdm/ceiling = %.2f (ceiling CPU per row / copy CPU per row)\n", bound)
	}
	fmt.Printf("  before each timed run the bench waited for the servers to go idle: %s\n", w)
	fmt.Printf("  peak heap during the copy %.1f MiB (bound: %d readers + %d writers = %d pages of %d rows in flight; measured at this size only)\n\n",
		float64(peak)/(1<<20), cfg.Readers, cfg.Workers, cfg.Readers+cfg.Workers, cfg.PageRows)
}

// usePageDefaults sets the page and range sizes the flags left to the
// copier to its defaults for col: every baseline uses the copier's sizes.
func usePageDefaults(col *milvus.Collection) {
	defaults := rowcopy.Config{PageRows: page, RangeRows: rangeRows}.WithDefaults()
	page, rangeRows = defaults.PageRowsFor(col.Schema), defaults.RangeRowsFor(col.Schema)
}

type endpoints map[string]string

func (e endpoints) Endpoint(_ context.Context, id string) (milvus.Endpoint, error) {
	return milvus.Endpoint{Address: e[id]}, nil
}

// migrationFor folds a plan into a migration, as the saga would.
func migrationFor(plan domain.CopyStarted) *domain.Migration {
	m := domain.NewMigration()
	opts := domain.Options{}.WithDefaults()
	for i, e := range []domain.Event{domain.MigrationRequested{ID: "bench", Source: domain.ClusterRef{ID: "src"}, Options: opts}, domain.Locked{},
		domain.ProvisioningStarted{}, domain.TargetProvisioned{ClusterID: "dst"}, plan} {
		must(m.Apply(domain.Record{Seq: uint64(i + 1), At: time.Now(), Event: e}))
	}
	return m
}

// zdmCopy is what one copy by zdm measured.
type zdmCopy struct {
	rate float64       // rows/s, timed like the others (see timed)
	make time.Duration // making the collection, index and load on the target
	peak uint64        // peak heap in use
	cpu  cpuRow
}

// timed is how every copy and its baselines are timed: from the moment
// the target holds nothing of the collection (zdm makes it, the baselines
// make it alike with fresh) to the last row acknowledged, with the CPU
// used over the same window. What each side prepares before that (zdm's
// preflight, the ceiling's pre-built batches) is outside it; zdm cutting
// the collection into key ranges is inside, as it is part of its copy.
type timed struct {
	began time.Time
	cpu   cpuUse
}

func startClock() timed { return timed{began: time.Now(), cpu: cpuNow()} }

// stop returns the rate of n rows over the window and their CPU per row.
func (t timed) stop(n int64) (float64, cpuRow) {
	d, elapsed := cpuNow().since(t.cpu), time.Since(t.began)
	return float64(n) / elapsed.Seconds(), cpuRow{self: perRow(d.self, n), source: perRow(d.source, n), target: perRow(d.target, n)}
}

func copyWithZdm(ctx context.Context, src, dst *milvus.Conn, col *milvus.Collection, logger *slog.Logger) zdmCopy {
	c := rowcopy.NewCopier(endpoints{"src": *source, "dst": *target}, rowcopy.Config{Workers: workers, Readers: readers, PageRows: page, RangeRows: rangeRows}, logger)
	m := migrationFor(domain.CopyStarted{})
	plan, err := c.Plan(ctx, m)
	must(err)
	m = migrationFor(plan)
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if h := ms.HeapInuse; h > peak.Load() {
				peak.Store(h)
			}
		}
	}()
	clock := startClock()
	var first sync.Once
	var made time.Duration
	must(c.Copy(ctx, m, func(_ context.Context, p domain.BulkCopyProgressed) error {
		first.Do(func() { made = time.Since(clock.began) })
		return nil
	}))
	rate, cpu := clock.stop(*rows)
	close(stop)
	n, err := dst.CountWhere(ctx, col.Database, col.Name, "")
	must(err)
	if n != *rows {
		log.Fatalf("zdm copied %d rows, want %d", n, *rows)
	}
	return zdmCopy{rate: rate, make: made, peak: peak.Load(), cpu: cpu}
}

// fresh recreates the target collection empty, as the copy leaves it:
// same schema, same indexes, loaded like the source. Inserting into a
// loaded, indexed collection costs the server more than into a bare one,
// and the copy has to deliver one.
func fresh(ctx context.Context, dst *milvus.Conn, col *milvus.Collection) {
	must(dst.DropEverything(ctx))
	must(dst.CreateDatabase(ctx, col.Database))
	must(dst.CreateCollection(ctx, col.Database, col.Schema, milvus.CollectionSettings{Shards: col.ShardsNum}))
	for _, idx := range col.Indexes {
		must(dst.CreateIndex(ctx, col.Database, col.Name, idx))
	}
	if col.Loaded {
		must(dst.Load(ctx, col.Database, col.Name))
	}
}

// insertCeiling returns the ceiling's rate and the CPU its writes took,
// timed like the copy; its batches are built before the clock starts.
func insertCeiling(ctx context.Context, dst *milvus.Conn, col *milvus.Collection) (float64, cpuRow) {
	must(dst.DropEverything(ctx))
	gen := milvus.RowGen{Schema: col.Schema, Rand: rand.New(rand.NewPCG(1, 2))}
	batches := int(*rows) / page
	pre := make([][]*schemapb.FieldData, batches)
	for b := range pre {
		keys := milvus.Keys{}
		for i := 0; i < page; i++ {
			keys.Ints = append(keys.Ints, int64(b*page+i))
		}
		pre[b] = gen.Columns(page, keys, func(int) int64 { return 1 })
	}
	clock := startClock()
	fresh(ctx, dst, col)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				b := int(next.Add(1)) - 1
				if b >= batches {
					return
				}
				_, err := dst.Insert(ctx, col.Database, col.Name, "", pre[b], page)
				must(err)
			}
		}()
	}
	wg.Wait()
	return clock.stop(int64(batches * page))
}

// readCeiling reads the collection as the copy does (reads at a timestamp
// of the source, pages in key order within ranges, as many readers) and
// writes nothing.
func readCeiling(ctx context.Context, src *milvus.Conn, col *milvus.Collection) float64 {
	cfg := rowcopy.Config{Workers: workers, Readers: readers, PageRows: page, RangeRows: rangeRows}.WithDefaults()
	fields := fieldNames(col)
	ts, err := src.ReadTimestamp(ctx, col.Database, col.Name)
	must(err)
	var next, total atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for r := 0; r < cfg.Readers; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				lo := next.Add(int64(cfg.RangeRows)) - int64(cfg.RangeRows)
				if lo >= *rows {
					return
				}
				hi, cursor := lo+int64(cfg.RangeRows), lo-1
				for cursor < hi-1 {
					cols, err := src.QueryAt(ctx, col.Database, col.Name, fmt.Sprintf("id > %d && id < %d", cursor, hi), fields, nil, int64(cfg.PageRows), ts)
					must(err)
					n := milvus.Rows(cols)
					if n == 0 {
						break
					}
					total.Add(int64(n))
					keys := milvus.KeysOf(milvus.Column(cols, "id")).Ints
					cursor = keys[len(keys)-1]
				}
			}
		}()
	}
	wg.Wait()
	return float64(total.Load()) / time.Since(t0).Seconds()
}

// fieldNames lists every field of col, for a query that returns whole rows.
func fieldNames(col *milvus.Collection) []string {
	var out []string
	for _, f := range col.Schema.GetFields() {
		out = append(out, f.GetName())
	}
	return out
}

// naiveCopy is what one would write first: one thread, each page read
// (at the copy's kind of timestamp, like zdm's reads) then inserted,
// over every row, timed like the copy.
func naiveCopy(ctx context.Context, src, dst *milvus.Conn, col *milvus.Collection) float64 {
	fields := fieldNames(col)
	ts, err := src.ReadTimestamp(ctx, col.Database, col.Name)
	must(err)
	must(dst.DropEverything(ctx))
	clock := startClock()
	fresh(ctx, dst, col)
	var copied int64
	cursor := int64(-1)
	for {
		cols, err := src.QueryAt(ctx, col.Database, col.Name, fmt.Sprintf("id > %d", cursor), fields, nil, int64(page), ts)
		must(err)
		n := milvus.Rows(cols)
		if n == 0 {
			break
		}
		_, err = dst.Insert(ctx, col.Database, col.Name, "", cols, n)
		must(err)
		copied += int64(n)
		keys := milvus.KeysOf(milvus.Column(cols, "id")).Ints
		cursor = keys[len(keys)-1]
	}
	rate, _ := clock.stop(copied)
	if copied != *rows {
		log.Fatalf("the naive copy copied %d rows, want %d", copied, *rows)
	}
	return rate
}
