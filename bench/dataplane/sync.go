package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/verify"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
)

// benchSync measures the proxy, the lag and the switch, on an embedded
// JetStream.
func benchSync(ctx context.Context, src, dst *milvus.Conn, quiet *slog.Logger) {
	dir, _ := os.MkdirTemp("", "zdm-bench-")
	defer os.RemoveAll(dir)
	emb, store, journal := embeddedJournal(ctx, dir)
	defer emb.Close()
	positions, err := store.KV(ctx, "BENCH_APPLY")
	must(err)
	if *only == "switch" {
		switchScale(ctx, src, dst, store, journal, positions, quiet)
		return
	}
	if *only == "syncload" {
		syncLoad(ctx, src, dst, quiet)
		return
	}
	if *only == "replicas" {
		proxyReplicas(ctx, src, quiet)
		return
	}
	if *only == "lag" {
		lagAndSwitch(ctx, src, dst, store, journal, positions, lagIngest(ctx, src), quiet)
		return
	}
	ingest := proxyBench(ctx, src, store, journal, quiet)
	proxyReplicas(ctx, src, quiet)
	lagAndSwitch(ctx, src, dst, store, journal, positions, ingest, quiet)
	switchScale(ctx, src, dst, store, journal, positions, quiet)
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
	dst  time.Duration // the target server's (the applier's replay, while a migration syncs)
	wall time.Duration // until the last batch was answered
}

// insertThroughput inserts batches of 100 rows from `clients` goroutines
// for d.
func insertThroughput(ctx context.Context, c *milvus.Conn, col *milvus.Collection, clients int, d time.Duration, base int64) round {
	var total atomic.Int64
	var wg sync.WaitGroup
	cpu0, src0, dst0, began := processCPU(), serverCPU("source"), serverCPU("target"), time.Now()
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
	return round{rate: float64(total.Load()) / wall.Seconds(), cpu: processCPU() - cpu0, src: serverCPU("source") - src0, dst: serverCPU("target") - dst0, wall: wall}
}

// proxyBench returns the direct ingest rate of 100-row batches (the higher
// of the two measured), the baseline of the lag measurement.
func proxyBench(ctx context.Context, src *milvus.Conn, store *eventstore.Store, journal capture.JournalLog, logger *slog.Logger) float64 {
	col, err := src.DescribeCollection(ctx, "bench_db0", "bench_c0")
	must(err)
	given, err := store.KV(ctx, "BENCH_GIVEN_KEYS")
	must(err)
	capture := capture.NewCapture(journal, noFailer{}, logger)
	capture.KeepGivenKeys(given)
	capture.Arm("src", "benchproxy", domain.Options{OnForbiddenOp: domain.PolicyReject})
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
	fmt.Printf("proxy (armed: every insert journaled before forwarding, its outcome behind the answer), batches of 100 rows x %d dims\n", *dim)
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

// The lag is sampled every lagEvery for lagWindowLength; a probe write not seen
// on the target within probeGiveUp is counted as unseen.
const (
	lagEvery        = 100 * time.Millisecond
	lagWindowLength = 60 * time.Second
	probeGiveUp     = 30 * time.Second
)

func lagAndSwitch(ctx context.Context, src, dst *milvus.Conn, store *eventstore.Store, journal capture.JournalLog, positions livesync.Positions, ceiling float64, logger *slog.Logger) {
	must(src.DropEverything(ctx))
	must(dst.DropEverything(ctx))
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 0, Dim: *dim, PKType: "int64", Index: "FLAT", Load: true, Shards: 2, Prefix: "lag_"}
	must(datatools.Seed(ctx, src, shape, nil))
	must(datatools.Seed(ctx, dst, shape, nil))
	// The target's own writes, timed beside the lag: a collection of the
	// target's alone, in a database the migration does not cover.
	must(datatools.Seed(ctx, dst, datatools.Shape{Databases: 1, Collections: 1, Dim: *dim, PKType: "int64", Index: "FLAT", Load: true, Shards: 2, Prefix: "lagprobe_"}, nil))
	settle()
	m := migrationFor(domain.CopyStarted{Collections: []domain.CollectionPlan{{Database: "lag_db0", Collection: "lag_c0"}}})
	must(m.Apply(domain.Record{Seq: 10, At: time.Now(), Event: domain.BulkCopyProgressed{Database: "lag_db0", Collection: "lag_c0", Range: "all", Done: true}}))
	must(m.Apply(domain.Record{Seq: 11, At: time.Now(), Event: domain.BulkCopied{}}))
	given, err := store.KV(ctx, "BENCH_GIVEN_KEYS")
	must(err)
	capture := capture.NewCapture(journal, noFailer{}, logger)
	capture.KeepGivenKeys(given)
	syncer := livesync.NewSyncer(ctx, endpoints{"src": *source, "dst": *target}, capture, journal, positions, reader{m}, noFailer{},
		livesync.Config{FingerprintEvery: time.Hour, LagEvery: lagEvery}, logger)
	must(syncer.Arm(ctx, m))
	addr, stop := startProxy(capture, *source, logger)
	defer stop()
	viaProxy := dial(ctx, addr)
	defer viaProxy.Close()

	target := []datatools.CollectionName{{Database: "lag_db0", Collection: "lag_c0"}}
	writeTo := func(rate float64, acks io.Writer) (stop func() datatools.LoadStats) {
		wctx, cancel := context.WithCancel(ctx)
		var stats datatools.LoadStats
		done := make(chan struct{})
		go func() {
			defer close(done)
			// Twice the writers, so that the rate holds when some writes
			// take longer.
			stats, _ = datatools.Load(wctx, viaProxy, datatools.LoadConfig{Targets: target, Rate: rate, Mix: datatools.Mix{Insert: 1}, Batch: 100, Workers: 2 * workers, Seed: 1}, acks)
		}()
		return func() datatools.LoadStats { cancel(); <-done; return stats }
	}
	write := func(rate float64) (stop func() datatools.LoadStats) { return writeTo(rate, &discard{}) }
	// At a quarter of the direct ingest rate, then at half (the goal's
	// rate): with both servers on this machine's cores, half of what one
	// server ingests alone is about all they carry together. The quarter
	// goes first, on a bed that holds no rows yet: each window leaves
	// hundreds of thousands, which the servers then flush and compact
	// during the next one.
	lw := lagWindow{syncer: syncer, m: m, write: write, viaProxy: viaProxy, target: dst,
		schema: shape.Schema("lag_c0"), probeSchema: shape.Schema("lagprobe_c0")}
	lw.measure(ctx, ceiling/4/100, "a quarter of", 0)
	lw.measure(ctx, ceiling/2/100, "half", 1)

	// The switch with a client writing continuously (50 batches a second).
	var acks ackTimes
	stopWriter := writeTo(50, &acks)
	time.Sleep(5 * time.Second)
	floorSrc, floorDst := strongReadTime(ctx, src, "lag_db0", "lag_c0"), strongReadTime(ctx, dst, "lag_db0", "lag_c0")
	sw, check, route, err := syncer.Switch(ctx, m)
	must(err)
	// As the saga does: the switch is recorded before the held writes go
	// on to the target, and that append is part of the pause.
	recording := time.Now()
	_, err = store.Append(ctx, domain.MigrationSubject+"bench-switch", 0, domain.Batch{At: recording, Actor: "bench",
		Events: []domain.Event{domain.Verified{Phase: "switch", Equal: check.Equal}, sw}})
	must(err)
	recorded := time.Since(recording)
	route(true)
	released := time.Now()
	// The same reads once the writes go on: a server whose reads lag its
	// writes (after the windows' bursts) shows it here too.
	afterSrc, afterDst := strongReadTime(ctx, src, "lag_db0", "lag_c0"), strongReadTime(ctx, dst, "lag_db0", "lag_c0")
	held := time.Duration(sw.WritePauseMS*float64(time.Millisecond)) + recorded
	time.Sleep(2 * time.Second) // the client goes on, now to the target
	stats := stopWriter()
	across, elsewhere := acks.gaps(released.Add(-held), released)
	fmt.Printf("switch with a client writing 50 batches/s (%d writes acknowledged, %d failed)\n", stats.Acknowledged, stats.Failed)
	fmt.Printf("  writes held by zdm %.0f ms (applying the journal up to the fence %.0f ms, checking the clusters %.0f ms,\n    recording the switch before releasing them %.1f ms);\n",
		sw.WritePauseMS+float64(recorded.Microseconds())/1000, sw.DrainMS, sw.CheckMS, float64(recorded.Microseconds())/1000)
	fmt.Printf("  a strong count alone, just before the switch, took %s on the source and %s on the target (a read that must see every\n    write made waits for its server's time tick; the check's reads are such reads, made all at once); just after it, %s and %s\n",
		floorSrc.Round(time.Millisecond), floorDst.Round(time.Millisecond), afterSrc.Round(time.Millisecond), afterDst.Round(time.Millisecond))
	fmt.Printf("  longest gap between two acknowledged client writes %s (goal < 1 s): %s across the hold, %s before or after it\n",
		stats.MaxGap.Round(time.Millisecond), across.Round(time.Millisecond), elsewhere.Round(time.Millisecond))
	fmt.Printf("  check while held: equal=%v\n", check.Equal)
	// What the check read, so a long hold can be told apart: a count that
	// waited, or keys walked to explain counts that differed.
	var rep verify.Report
	if json.Unmarshal(check.Report, &rep) == nil {
		for _, c := range rep.Collections {
			fmt.Printf("    %s/%s: %d rows on the source, %d on the target, %d keys read one by one, %d of the source's rows under a key it already held\n",
				c.Database, c.Collection, c.SourceRows, c.TargetRows, c.HeldKeysRead, c.SourceDuplicates)
		}
	}
	_ = syncer.Disarm(ctx, m)
}

// strongReadTime is the median time of three counts of coll that must see
// every write made before they began, as the switch's check reads.
func strongReadTime(ctx context.Context, c *milvus.Conn, db, coll string) time.Duration {
	var took []time.Duration
	for range 3 {
		t0 := time.Now()
		_, err := c.CountWhere(ctx, db, coll, "")
		must(err)
		took = append(took, time.Since(t0))
	}
	return pct(took, 50)
}
