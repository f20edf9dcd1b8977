// Command dataplane measures zdm's data plane on the test bed's two real
// Milvus servers, each figure against a baseline measured in the same run:
//
//   - bulk copy of a 200,000-row collection (128-dim vectors): zdm's copier
//     against a ceiling (pre-built batches of the same size inserted with
//     the same concurrency) and a naive single-threaded query-then-insert
//     loop; peak heap during the copy;
//   - the proxy: latency and throughput of insert batches, through the
//     armed proxy (journaling) against direct;
//   - sync lag under a sustained write rate of half the measured ingest
//     ceiling, and the write pause a client sees at the switch.
package main

import (
	"bytes"
	"cmp"
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/adapters/milvus"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
)

var (
	source = flag.String("source", "127.0.0.1:19530", "source Milvus")
	target = flag.String("target", "127.0.0.1:19560", "target Milvus")
	rows   = flag.Int64("rows", 200000, "rows of the copied collection")
	dim    = flag.Int("dim", 128, "vector dimension")
	only   = flag.String("only", "", "run one part: copy, or sync (the proxy, the lag and the switch)")
	// The proxy, the capture and the copier run in this process.
	cpuProfile = flag.String("cpuprofile", "", "write this process's CPU profile to `file` (go tool pprof reads it)")
)

var (
	workers   = 4
	page      = 0
	readers   = 0
	rangeRows = 0
)

func init() {
	flag.IntVar(&workers, "workers", workers, "copy writers, and the ceiling's and the proxy clients' concurrency")
	flag.IntVar(&page, "page", page, "rows per copied page and per ceiling batch (0: the copier's default, from a 6 MiB page)")
	flag.IntVar(&readers, "readers", readers, "copy readers (0: the copier's default, 2 x workers)")
	flag.IntVar(&rangeRows, "range-rows", rangeRows, "rows per checkpointed range (0: the copier's default)")
}

func main() {
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		must(err)
		must(pprof.StartCPUProfile(f))
		defer func() { pprof.StopCPUProfile(); must(f.Close()) }()
	}
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	src, dst := dial(ctx, *source), dial(ctx, *target)
	must(src.DropEverything(ctx))
	must(dst.DropEverything(ctx))
	fmt.Printf("zdm data plane benchmark: source %s, target %s\n\n", *source, *target)
	shape := milvus.Shape{Databases: 1, Collections: 1, Rows: *rows, Dim: *dim, PKType: "int64", Index: "FLAT", Load: true, Shards: 2, Seed: 9, Prefix: "bench_"}
	t0 := time.Now()
	must(milvus.Seed(ctx, src, shape, nil))
	fmt.Printf("seeded %d rows x %d dims in %s\n\n", *rows, *dim, time.Since(t0).Round(time.Second))
	col, err := src.DescribeCollection(ctx, "bench_db0", "bench_c0")
	must(err)

	if *only != "sync" {
		benchCopy(ctx, src, dst, col, quiet)
	}
	if *only == "copy" {
		return
	}
	benchSync(ctx, src, dst, quiet)
}

// benchCopy measures the bulk copy against its baselines.
func benchCopy(ctx context.Context, src, dst *milvus.Conn, col *milvus.Collection, quiet *slog.Logger) {
	// Every baseline uses the copier's page and range sizes.
	defaults := milvus.CopyConfig{PageRows: page, RangeRows: rangeRows}.WithDefaults()
	page, rangeRows = defaults.PageRowsFor(col.Schema), defaults.RangeRowsFor(col.Schema)
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
	cfg := milvus.CopyConfig{Workers: workers, Readers: readers, PageRows: page, RangeRows: rangeRows}.WithDefaults()
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

// benchSync measures the proxy, the lag and the switch, on an embedded
// JetStream.
func benchSync(ctx context.Context, src, dst *milvus.Conn, quiet *slog.Logger) {
	dir, _ := os.MkdirTemp("", "zdm-bench-")
	defer os.RemoveAll(dir)
	emb, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: dir, Listen: "none"})
	must(err)
	defer emb.Close()
	nc, err := emb.Connect("bench")
	must(err)
	store, err := eventstore.Open(ctx, nc)
	must(err)
	// The journal has a connection of its own, as in zdmd.
	jnc, err := emb.Connect("bench-journal")
	must(err)
	journal, err := eventstore.OpenJournalOn(ctx, jnc)
	must(err)
	positions, err := store.KV(ctx, "BENCH_APPLY")
	must(err)
	ingest := proxyBench(ctx, src, store, journal, quiet)
	lagAndSwitch(ctx, src, dst, store, journal, positions, ingest, quiet)
}

func dial(ctx context.Context, addr string) *milvus.Conn {
	c, err := milvus.Dial(ctx, milvus.Endpoint{Address: addr})
	must(err)
	return c
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
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
// plan, the ceiling's pre-built batches) is outside it.
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
	c := milvus.NewCopier(endpoints{"src": *source, "dst": *target}, milvus.CopyConfig{Workers: workers, Readers: readers, PageRows: page, RangeRows: rangeRows}, logger)
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

// cpuRow is CPU per row, in microseconds.
type cpuRow struct{ self, source, target float64 }

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

// cpuUse is CPU time used by this process and by the test bed's two
// servers (0 for a server whose process is not found: one not started by
// scripts/milvus-up.sh).
type cpuUse struct{ self, source, target time.Duration }

func cpuNow() cpuUse {
	return cpuUse{self: processCPU(), source: serverCPU("source"), target: serverCPU("target")}
}

func (u cpuUse) since(b cpuUse) cpuUse {
	return cpuUse{self: u.self - b.self, source: u.source - b.source, target: u.target - b.target}
}

// perRow is d per row of n rows, in microseconds.
func perRow(d time.Duration, n int64) float64 { return float64(d.Microseconds()) / float64(n) }

// serverStats finds, once, the /proc stat file of each test-bed server
// ("" for one not started by scripts/milvus-up.sh).
var serverStats = sync.OnceValue(func() map[string]string {
	root := os.Getenv("ZDM_MILVUS_ROOT")
	if root == "" {
		root = ".cache/milvus"
	}
	out := map[string]string{}
	for _, name := range []string{"source", "target"} {
		if pid, err := os.ReadFile(filepath.Join(root, "servers", name, "milvus.pid")); err == nil {
			out[name] = "/proc/" + strings.TrimSpace(string(pid)) + "/stat"
		}
	}
	return out
})

// settle waits until both test-bed servers are idle (each used under a
// tenth of a core over the last second), at most a minute, and returns
// how long it waited. A server goes on working after a write returns
// (flushes, sealing, index builds, dropping the last run's collection);
// without the wait, that work lands in whichever side is timed next.
func settle() (waited time.Duration, idle bool) {
	const window, quiet = time.Second, 100 * time.Millisecond
	t0 := time.Now()
	prev := cpuNow()
	for time.Since(t0) < time.Minute {
		time.Sleep(window)
		now := cpuNow()
		d := now.since(prev)
		prev = now
		if d.source < quiet && d.target < quiet {
			return time.Since(t0), true
		}
	}
	return time.Since(t0), false
}

// waits adds up the settle waits of a run, and how many ended idle.
type waits struct {
	total     time.Duration
	idle, all int
}

func (w *waits) settle() {
	d, idle := settle()
	w.total += d
	w.all++
	if idle {
		w.idle++
	}
}

func (w waits) String() string {
	return fmt.Sprintf("%.1f s in all; %d of %d waits found both servers idle (under 0.1 s of CPU a second), the others gave up after a minute",
		w.total.Seconds(), w.idle, w.all)
}

// serverCPU reads the CPU time of a test-bed server from /proc.
func serverCPU(name string) time.Duration {
	path := serverStats()[name]
	if path == "" {
		return 0
	}
	stat, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// Fields after the command's closing parenthesis: state is the first,
	// user and system time in clock ticks (1/100 s) the 12th and 13th.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	user, _ := strconv.ParseInt(f[11], 10, 64)
	sys, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(user+sys) * 10 * time.Millisecond
}

// readCeiling reads the collection as the copy does (reads at a timestamp
// of the source, pages in key order within ranges, as many readers) and
// writes nothing.
func readCeiling(ctx context.Context, src *milvus.Conn, col *milvus.Collection) float64 {
	cfg := milvus.CopyConfig{Workers: workers, Readers: readers, PageRows: page, RangeRows: rangeRows}.WithDefaults()
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

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return (s[(len(s)-1)/2] + s[len(s)/2]) / 2
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func startProxy(capture *milvus.Capture, upstream string, logger *slog.Logger) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	p := milvus.NewProxy("src", func() string { return upstream }, capture, logger)
	go func() { _ = p.Serve(ln) }()
	return ln.Addr().String(), p.Stop
}

type noFailer struct{}

func (noFailer) FailMigration(_ context.Context, id, reason, detail string) error {
	log.Printf("migration would fail: %s %s", reason, detail)
	return nil
}

// insertLatencies sends n insert batches of 100 rows one after another.
func insertLatencies(ctx context.Context, c *milvus.Conn, col *milvus.Collection, n int, base int64) []time.Duration {
	gen := milvus.RowGen{Schema: col.Schema, Rand: rand.New(rand.NewPCG(3, 4))}
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		keys := milvus.Keys{}
		for j := 0; j < 100; j++ {
			keys.Ints = append(keys.Ints, base+int64(i*100+j))
		}
		cols := gen.Columns(100, keys, func(int) int64 { return 1 })
		t0 := time.Now()
		_, err := c.Insert(ctx, col.Database, col.Name, "", cols, 100)
		must(err)
		out = append(out, time.Since(t0))
	}
	return out
}

// round is what one throughput round measured.
type round struct {
	rate float64       // rows per second
	cpu  time.Duration // this process's: the clients', and the proxy's when they go through it
	src  time.Duration // the source server's
	wall time.Duration // until the last batch was answered
}

// insertThroughput inserts batches of 100 rows from `clients` goroutines
// for d.
func insertThroughput(ctx context.Context, c *milvus.Conn, col *milvus.Collection, clients int, d time.Duration, base int64) round {
	var total atomic.Int64
	var wg sync.WaitGroup
	cpu0, src0, began := processCPU(), serverCPU("source"), time.Now()
	deadline := began.Add(d)
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gen := milvus.RowGen{Schema: col.Schema, Rand: rand.New(rand.NewPCG(uint64(w), 5))}
			for i := 0; time.Now().Before(deadline); i++ {
				keys := milvus.Keys{}
				for j := 0; j < 100; j++ {
					keys.Ints = append(keys.Ints, base+int64(w)*1e9+int64(i*100+j))
				}
				_, err := c.Insert(ctx, col.Database, col.Name, "", gen.Columns(100, keys, func(int) int64 { return 1 }), 100)
				must(err)
				total.Add(100)
			}
		}()
	}
	wg.Wait()
	// Batches sent before the deadline are answered after it: the rate
	// is over the whole time they took.
	wall := time.Since(began)
	return round{rate: float64(total.Load()) / wall.Seconds(), cpu: processCPU() - cpu0, src: serverCPU("source") - src0, wall: wall}
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	must(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// proxyBench returns the direct ingest rate of 100-row batches (the higher
// of the two measured), the baseline of the lag measurement.
func proxyBench(ctx context.Context, src *milvus.Conn, store *eventstore.Store, journal milvus.JournalLog, logger *slog.Logger) float64 {
	col, err := src.DescribeCollection(ctx, "bench_db0", "bench_c0")
	must(err)
	intents, err := store.KV(ctx, "BENCH_INTENTS")
	must(err)
	capture := milvus.NewCapture(journal, noFailer{}, logger)
	capture.KeepIntents(intents)
	capture.Arm("src", "benchproxy", domain.PolicyReject)
	addr, stop := startProxy(capture, *source, logger)
	defer stop()
	viaProxy := dial(ctx, addr)
	defer viaProxy.Close()
	// Start from an idle server (the seed's flush and index builds done),
	// then alternate so that both see the same server state.
	settle()
	var direct, proxied []time.Duration
	for round := 0; round < 4; round++ {
		direct = append(direct, insertLatencies(ctx, src, col, 50, 1e10+int64(round)*1e7)...)
		proxied = append(proxied, insertLatencies(ctx, viaProxy, col, 50, 2e10+int64(round)*1e7)...)
	}
	// Throughput with `workers` clients, and with four times as many, where
	// the server is the limit: a client waits for each answer, so with few
	// clients the rate follows the latency rather than what the path can
	// carry. Rounds go in pairs, direct and through the proxy back to back,
	// in alternating order, so that a slow drift of the server weighs on
	// both alike. The server also stalls now and then for a second or so
	// (a flush, a compaction, its garbage collector: "the gc is slow" in
	// its log), whatever the path, and one stalled round moves a mean by a
	// third: each path's rate is the median of its rounds.
	few, many := workers, 4*workers
	const pairs = 20
	type paired struct {
		direct, proxied    float64       // median rows/s of a round
		stalled            int           // rounds under a quarter of their path's median
		dCPU, pCPU         time.Duration // this process's
		dSrc, pSrc         time.Duration // the source server's
		dWall              time.Duration
		dBatches, pBatches float64
	}
	measure := func(clients int, base int64) paired {
		var out paired
		var ds, ps []float64
		for i := 0; i < pairs; i++ {
			b := base + int64(i)*1e8
			var d, p round
			if i%2 == 0 {
				d = insertThroughput(ctx, src, col, clients, time.Second, b)
				p = insertThroughput(ctx, viaProxy, col, clients, time.Second, b+5e7)
			} else {
				p = insertThroughput(ctx, viaProxy, col, clients, time.Second, b+5e7)
				d = insertThroughput(ctx, src, col, clients, time.Second, b)
			}
			ds, ps = append(ds, d.rate), append(ps, p.rate)
			out.dCPU, out.pCPU = out.dCPU+d.cpu, out.pCPU+p.cpu
			out.dSrc, out.pSrc, out.dWall = out.dSrc+d.src, out.pSrc+p.src, out.dWall+d.wall
			out.dBatches, out.pBatches = out.dBatches+d.rate/100, out.pBatches+p.rate/100
		}
		out.direct, out.proxied = median(ds), median(ps)
		for i := range ds {
			if ds[i] < out.direct/4 {
				out.stalled++
			}
			if ps[i] < out.proxied/4 {
				out.stalled++
			}
		}
		return out
	}
	f, m := measure(few, 3e10), measure(many, 5e10)
	perBatch := func(cpu time.Duration, batches float64) int64 {
		return int64(cpu.Microseconds()) / max(1, int64(batches))
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("proxy (armed: every insert recorded as an intent before forwarding and journaled before the answer), batches of 100 rows x %d dims\n", *dim)
	fmt.Printf("  direct  p50 %6.2f ms  p99 %6.2f ms  throughput %8.0f rows/s with %d clients, %8.0f with %d\n", ms(pct(direct, 50)), ms(pct(direct, 99)), f.direct, few, m.direct, many)
	fmt.Printf("  proxy   p50 %6.2f ms  p99 %6.2f ms  throughput %8.0f rows/s with %d clients, %8.0f with %d\n", ms(pct(proxied, 50)), ms(pct(proxied, 99)), f.proxied, few, m.proxied, many)
	fmt.Printf("  p50 added %.2f ms (goal <= 1 ms); throughput ratio proxy/direct %.2f with %d clients (goal >= 0.9), %.2f with %d (there it follows the added latency)\n",
		ms(pct(proxied, 50))-ms(pct(direct, 50)), m.proxied/m.direct, many, f.proxied/f.direct, few)
	fmt.Printf("  throughputs are the median of %d one-second rounds, direct and proxied in alternating pairs; the server stalled\n", pairs)
	fmt.Printf("    (under a quarter of the median) in %d of %d rounds with %d clients, %d of %d with %d\n", m.stalled, 2*pairs, many, f.stalled, 2*pairs, few)
	pc, dc := perBatch(m.pCPU, m.pBatches), perBatch(m.dCPU, m.dBatches)
	fmt.Printf("  CPU of the proxy per batch %d us (this process: %d us per batch through the proxy, %d direct, with %d clients;\n", pc-dc, pc, dc, many)
	fmt.Printf("    the clients run here too), on the cores the source server needs\n")
	if serverStats()["source"] != "" {
		// The machine's CPU per batch on each path, and what the rates
		// would compare to if the cores were all that bounded them.
		ds, ps := perBatch(m.dSrc, m.dBatches), perBatch(m.pSrc, m.pBatches)
		fmt.Printf("  CPU per batch of the source server and this process together: %d us direct, %d through the proxy (source %d and %d);\n",
			ds+dc, ps+pc, ds, ps)
		fmt.Printf("    with the %d cores as the only limit, the proxy's rate would be %.2f of direct (the direct rounds kept them %.0f%% busy)\n",
			runtime.NumCPU(), float64(ds+dc)/float64(max(1, ps+pc)), 100*(m.dSrc+m.dCPU).Seconds()/(m.dWall.Seconds()*float64(runtime.NumCPU())))
	}
	fmt.Println()
	capture.Disarm("benchproxy")
	return max(f.direct, m.direct)
}

type reader struct{ m *domain.Migration }

func (r reader) Migration(context.Context, string) (*domain.Migration, error) { return r.m, nil }

type discard struct{}

func (*discard) Write(p []byte) (int, error) { return len(p), nil }

// The lag is sampled every lagEvery for lagWindow; a probe write not seen
// on the target within probeGiveUp is counted as unseen.
const (
	lagEvery    = 100 * time.Millisecond
	lagWindow   = 60 * time.Second
	probeGiveUp = 30 * time.Second
)

// probeVisibility writes one row every 250 ms through the proxy, keys
// apart from the load's, and times each from its acknowledgement to the
// first read of the target that returns it. stop returns the times,
// sorted, and how many were never seen.
func probeVisibility(ctx context.Context, through, target *milvus.Conn, schema *schemapb.CollectionSchema) (stop func() ([]time.Duration, int)) {
	pctx, cancel := context.WithCancel(ctx)
	var (
		mu     sync.Mutex
		seen   []time.Duration
		unseen int
		wg     sync.WaitGroup
	)
	gen := milvus.RowGen{Schema: schema, Rand: rand.New(rand.NewPCG(7, 7))}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for key := int64(1 << 40); pctx.Err() == nil; key++ {
			cols := gen.Columns(1, milvus.Keys{Ints: []int64{key}}, func(int) int64 { return 1 })
			if _, err := through.Insert(pctx, "lag_db0", "lag_c0", "", cols, 1); err != nil {
				continue
			}
			acked := time.Now()
			wg.Add(1)
			go func(key int64) {
				defer wg.Done()
				for time.Since(acked) < probeGiveUp {
					if n, err := target.CountWhere(ctx, "lag_db0", "lag_c0", fmt.Sprintf("id == %d", key)); err == nil && n == 1 {
						mu.Lock()
						seen = append(seen, time.Since(acked))
						mu.Unlock()
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
				mu.Lock()
				unseen++
				mu.Unlock()
			}(key)
			select {
			case <-pctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	return func() ([]time.Duration, int) {
		cancel()
		wg.Wait()
		slices.Sort(seen)
		return seen, unseen
	}
}

func lagAndSwitch(ctx context.Context, src, dst *milvus.Conn, store *eventstore.Store, journal milvus.JournalLog, positions milvus.Positions, ceiling float64, logger *slog.Logger) {
	must(src.DropEverything(ctx))
	must(dst.DropEverything(ctx))
	shape := milvus.Shape{Databases: 1, Collections: 1, Rows: 0, Dim: *dim, PKType: "int64", Index: "FLAT", Load: true, Shards: 2, Prefix: "lag_"}
	must(milvus.Seed(ctx, src, shape, nil))
	must(milvus.Seed(ctx, dst, shape, nil))
	settle()
	m := migrationFor(domain.CopyStarted{Collections: []domain.CollectionPlan{{Database: "lag_db0", Collection: "lag_c0"}}})
	must(m.Apply(domain.Record{Seq: 10, At: time.Now(), Event: domain.BulkCopyProgressed{Database: "lag_db0", Collection: "lag_c0", Range: "all", Done: true}}))
	must(m.Apply(domain.Record{Seq: 11, At: time.Now(), Event: domain.BulkCopied{}}))
	intents, err := store.KV(ctx, "BENCH_INTENTS")
	must(err)
	capture := milvus.NewCapture(journal, noFailer{}, logger)
	capture.KeepIntents(intents)
	syncer := milvus.NewSyncer(ctx, endpoints{"src": *source, "dst": *target}, capture, journal, positions, reader{m}, noFailer{},
		milvus.SyncConfig{FingerprintEvery: time.Hour, LagEvery: lagEvery}, logger)
	must(syncer.Arm(ctx, m))
	addr, stop := startProxy(capture, *source, logger)
	defer stop()
	viaProxy := dial(ctx, addr)
	defer viaProxy.Close()

	target := []milvus.Target{{Database: "lag_db0", Collection: "lag_c0"}}
	write := func(rate float64) (stop func() milvus.LoadStats) {
		wctx, cancel := context.WithCancel(ctx)
		var stats milvus.LoadStats
		done := make(chan struct{})
		go func() {
			defer close(done)
			// Twice the writers, so that the rate holds when some writes
			// take longer.
			stats, _ = milvus.Load(wctx, viaProxy, milvus.LoadConfig{Targets: target, Rate: rate, Mix: milvus.Mix{Insert: 1}, Batch: 100, Workers: 2 * workers, Seed: 1}, &discard{})
		}()
		return func() milvus.LoadStats { cancel(); <-done; return stats }
	}
	// lagOf takes one sample: Sync takes one at once, then one a second.
	lagOf := func() float64 {
		var last float64
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		_ = syncer.Sync(sctx, m, func(_ context.Context, s float64) error { last = s; cancel(); return nil })
		return last
	}

	// Lag at half the direct ingest rate of 100-row batches, sampled by
	// zdm every lagEvery over lagWindow, while an independent probe times
	// its own writes from acknowledgement to visibility on the target.
	rate := ceiling / 2 / 100
	stopWriter := write(rate)
	stopProbe := probeVisibility(ctx, viaProxy, dst, shape.Schema("lag_c0"))
	writeBegan := time.Now()
	var lags []float64
	sctx, scancel := context.WithTimeout(ctx, lagWindow)
	_ = syncer.Sync(sctx, m, func(_ context.Context, s float64) error { lags = append(lags, s); return nil })
	scancel()
	window := time.Since(writeBegan)
	load := stopWriter()
	visible, unseen := stopProbe()
	achieved := float64(load.Acknowledged) * 100 / window.Seconds()
	drainBegan := time.Now()
	for lagOf() > 0 && time.Since(drainBegan) < 2*time.Minute {
		time.Sleep(20 * time.Millisecond)
	}
	drained := time.Since(drainBegan)
	slices.Sort(lags)
	p := func(q int) float64 { return lags[(len(lags)-1)*q/100] }
	fmt.Printf("sync while a client writes through the proxy at %.0f rows/s asked, %.0f rows/s acknowledged (half the direct ingest rate of 100-row batches; %d writes)\n",
		rate*100, achieved, load.Acknowledged)
	fmt.Printf("  zdm's lag estimate, %d samples every %s over %s: p50 %.2fs  p99 %.2fs  max %.2fs (goal p99 <= 2 s)\n",
		len(lags), lagEvery, window.Round(time.Second), p(50), p(99), lags[len(lags)-1])
	if len(visible) > 0 {
		fmt.Printf("  independent probe, %d writes through the proxy, each timed by the client from its acknowledgement to the first\n", len(visible))
		fmt.Printf("    strongly consistent read of the target that returns it: p50 %.2fs  p99 %.2fs  max %.2fs (%d not seen within %s)\n",
			pct(visible, 50).Seconds(), pct(visible, 99).Seconds(), visible[len(visible)-1].Seconds(), unseen, probeGiveUp)
	}
	fmt.Printf("  backlog applied %s after the writes stopped\n\n", drained.Round(time.Millisecond))

	// The switch with a client writing continuously (50 batches a second).
	stopWriter = write(50)
	time.Sleep(5 * time.Second)
	sw, check, err := syncer.Switch(ctx, m)
	must(err)
	time.Sleep(2 * time.Second) // the client goes on, now to the target
	stats := stopWriter()
	fmt.Printf("switch with a client writing 50 batches/s (%d writes acknowledged, %d failed)\n", stats.Acknowledged, stats.Failed)
	fmt.Printf("  writes held by zdm %.0f ms (applying the journal up to the fence %.0f ms, checking the clusters %.0f ms);\n",
		sw.WritePauseMS, sw.DrainMS, sw.CheckMS)
	fmt.Printf("  longest gap between two acknowledged client writes %s (goal < 1 s)\n", stats.MaxGap.Round(time.Millisecond))
	fmt.Printf("  check while held: equal=%v\n", check.Equal)
	_ = syncer.Disarm(ctx, m)
}
