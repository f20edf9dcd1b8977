package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/domain"
)

// probeVisibility writes one row every 250 ms through the proxy, keys
// from first on, apart from the load's, and times each from its acknowledgement to the
// first read of the target that returns it. stop returns the times,
// sorted, and how many were never seen.
func probeVisibility(ctx context.Context, through, target *milvus.Conn, schema *schemapb.CollectionSchema, first int64) (stop func() ([]time.Duration, int)) {
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
		for key := first; pctx.Err() == nil; key++ {
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

// lagWindow measures the lag while a client writes through the proxy.
type lagWindow struct {
	syncer              *livesync.Syncer
	m                   *domain.Migration
	write               func(rate float64) (stop func() datatools.LoadStats)
	viaProxy, target    *milvus.Conn
	schema, probeSchema *schemapb.CollectionSchema
}

// measure writes `rate` batches of 100 rows a second through the proxy
// for lagWindowLength, sampling zdm's lag every lagEvery, while an independent
// probe times its own writes from acknowledgement to visibility on the
// target and another times the target's answers to writes of its own.
func (l lagWindow) measure(ctx context.Context, rate float64, share string, nth int64) {
	stopWriter := l.write(rate)
	// Each window's probe writes keys of its own: a key written twice
	// would be held twice by the source.
	stopProbe := probeVisibility(ctx, l.viaProxy, l.target, l.schema, 1<<40+nth<<30)
	stopTargetProbe := probeTargetWrites(ctx, l.target, l.probeSchema)
	cpu0, src0, dst0, began := processCPU(), serverCPU("source"), serverCPU("target"), time.Now()
	var lags []float64
	sctx, scancel := context.WithTimeout(ctx, lagWindowLength)
	_ = l.syncer.Sync(sctx, l.m, func(_ context.Context, s float64) error { lags = append(lags, s); return nil })
	scancel()
	window := time.Since(began)
	cpu, src, dst := processCPU()-cpu0, serverCPU("source")-src0, serverCPU("target")-dst0
	load := stopWriter()
	visible, unseen := stopProbe()
	targetWrites := stopTargetProbe()
	achieved := float64(load.Acknowledged) * 100 / window.Seconds()
	drainBegan := time.Now()
	for l.lag(ctx) > 0 && time.Since(drainBegan) < 2*time.Minute {
		time.Sleep(20 * time.Millisecond)
	}
	drained := time.Since(drainBegan)
	slices.Sort(lags)
	p := func(q int) float64 { return lags[(len(lags)-1)*q/100] }
	fmt.Printf("sync while a client writes through the proxy at %.0f rows/s asked, %.0f rows/s acknowledged (%s the direct ingest rate of 100-row batches; %d writes)\n",
		rate*100, achieved, share, load.Acknowledged)
	fmt.Printf("  zdm's lag estimate, %d samples every %s over %s: p50 %.2fs  p99 %.2fs  max %.2fs (goal p99 <= 2 s)\n",
		len(lags), lagEvery, window.Round(time.Second), p(50), p(99), lags[len(lags)-1])
	if len(visible) > 0 {
		fmt.Printf("  independent probe, %d writes through the proxy, each timed by the client from its acknowledgement to the first\n", len(visible))
		fmt.Printf("    strongly consistent read of the target that returns it: p50 %.2fs  p99 %.2fs  max %.2fs (%d not seen within %s)\n",
			pct(visible, 50).Seconds(), pct(visible, 99).Seconds(), visible[len(visible)-1].Seconds(), unseen, probeGiveUp)
	}
	if len(targetWrites) > 0 {
		fmt.Printf("  the target's answer to writes of its own in the same window, %d upserts of 100 rows straight to it, one every 250 ms:\n", len(targetWrites))
		fmt.Printf("    p50 %.2fs  p99 %.2fs  max %.2fs\n", pct(targetWrites, 50).Seconds(), pct(targetWrites, 99).Seconds(), targetWrites[len(targetWrites)-1].Seconds())
	}
	if serverStats()["source"] != "" {
		busy := (cpu + src + dst).Seconds() / (window.Seconds() * float64(runtime.NumCPU()))
		fmt.Printf("  the %d cores were %.0f%% busy with the two servers and this process (source %.2f, target %.2f, this process %.2f cores:\n",
			runtime.NumCPU(), 100*busy, src.Seconds()/window.Seconds(), dst.Seconds()/window.Seconds(), cpu.Seconds()/window.Seconds())
		fmt.Printf("    the client, the proxy, NATS and the applier)\n")
	}
	fmt.Printf("  backlog applied %s after the writes stopped\n\n", drained.Round(time.Millisecond))
}

// lag takes one sample: Sync takes one at once, then one a second.
func (l lagWindow) lag(ctx context.Context) float64 {
	var last float64
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_ = l.syncer.Sync(sctx, l.m, func(_ context.Context, s float64) error { last = s; cancel(); return nil })
	return last
}

// probeTargetWrites upserts 100 rows straight to the target every 250 ms,
// into a collection of its own, and times each answer: the applier's
// writes wait as long, so the lag is read beside them. stop returns the
// times, sorted.
func probeTargetWrites(ctx context.Context, target *milvus.Conn, schema *schemapb.CollectionSchema) (stop func() []time.Duration) {
	pctx, cancel := context.WithCancel(ctx)
	var took []time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		gen := milvus.RowGen{Schema: schema, Rand: rand.New(rand.NewPCG(8, 8))}
		for i := int64(0); pctx.Err() == nil; i++ {
			keys := milvus.Keys{}
			for j := int64(0); j < 100; j++ {
				keys.Ints = append(keys.Ints, i*100+j)
			}
			cols := gen.Columns(100, keys, func(int) int64 { return 1 })
			began := time.Now()
			if _, err := target.Upsert(pctx, "lagprobe_db0", "lagprobe_c0", "", cols, 100); err == nil {
				took = append(took, time.Since(began))
			}
			select {
			case <-pctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	return func() []time.Duration {
		cancel()
		<-done
		slices.Sort(took)
		return took
	}
}

// lagIngest measures the source's direct ingest of 100-row batches with
// four times `workers` clients (the median of five one-second rounds), the
// baseline of the lag when the proxy's part does not run before it.
func lagIngest(ctx context.Context, src *milvus.Conn) float64 {
	col, err := src.DescribeCollection(ctx, "bench_db0", "bench_c0")
	must(err)
	settle()
	var rates []float64
	for i := range 5 {
		rates = append(rates, insertThroughput(ctx, src, col, 4*workers, time.Second, 7e10+int64(i)*1e8).rate)
	}
	ingest := median(rates)
	fmt.Printf("direct ingest of 100-row batches with %d clients: %.0f rows/s (median of five one-second rounds)\n\n", 4*workers, ingest)
	return ingest
}

// ackTimes keeps the times of a load's acknowledged writes, from the
// journal it writes (one JSON line per write).
type ackTimes struct {
	mu sync.Mutex
	at []time.Time
}

func (a *ackTimes) Write(p []byte) (int, error) {
	var ack datatools.Ack
	if err := json.Unmarshal(p, &ack); err == nil && !ack.Unsure {
		a.mu.Lock()
		a.at = append(a.at, ack.At)
		a.mu.Unlock()
	}
	return len(p), nil
}

// gaps returns the longest time between two acknowledged writes that
// spans part of [from, to], and the longest of the others: a server that
// stalls makes a gap of its own, the switch one across its hold.
func (a *ackTimes) gaps(from, to time.Time) (across, elsewhere time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	at := slices.SortedFunc(slices.Values(a.at), time.Time.Compare)
	for i := 1; i < len(at); i++ {
		gap := at[i].Sub(at[i-1])
		if at[i-1].Before(to) && at[i].After(from) {
			across = max(across, gap)
		} else {
			elsewhere = max(elsewhere, gap)
		}
	}
	return across, elsewhere
}
