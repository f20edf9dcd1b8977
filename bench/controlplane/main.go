// Command controlplane measures the event store and projections against raw
// JetStream on the same embedded server, in one run:
//
//   - append throughput (acknowledged events/s) of zdm's optimistic append,
//     against plain publishes of the same payload;
//   - replay of a 100,000-event history (load and fold through the FSM),
//     against reading the same messages raw;
//   - a page of events read at the start, the middle and the end of that
//     history, against the same page at the start;
//   - replay of a week of sync recorded at the default intervals;
//   - delay from an append to the projected status (p50/p99), against the
//     delay from a plain publish to a plain subscriber;
//   - on a three-node cluster, a command's read of the few events its
//     instance lacks, against reading them through a consumer;
//   - on three-node clusters, how long the journal takes no append when
//     its leader's node is killed, zdm-nats against nats-server.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/domain/domaintest"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/projections"
)

const (
	replayEvents = 100_000
	writers      = 8
	latencyRuns  = 2000
)

func main() {
	dir, err := os.MkdirTemp("", "zdm-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	emb, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: dir, Listen: "none"})
	if err != nil {
		log.Fatal(err)
	}
	defer emb.Close()
	nc, err := emb.Connect("bench")
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	store, err := eventstore.Open(ctx, nc)
	if err != nil {
		log.Fatal(err)
	}
	js := store.JetStream()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage}); err != nil {
		log.Fatal(err)
	}

	fmt.Println("zdm control plane benchmark (embedded JetStream, file storage)")
	fmt.Println()

	// 1. Append throughput.
	seqs := make([]uint64, writers)
	appendEvent := func(w, i int) error {
		seq, err := store.Append(ctx, fmt.Sprintf("%sw%d", domain.MigrationSubject, w), seqs[w],
			domain.Batch{At: time.Now(), Actor: "bench", Events: []domain.Event{domain.LagSampled{LagSeconds: float64(i)}}})
		seqs[w] = seq
		return err
	}
	payload := []byte(`{"at":"2026-01-01T00:00:00Z","actor":"bench","events":[{"type":"zdm.migration.lag_sampled.v1","data":{"lag_seconds":1}}]}`)
	publish := func(w, _ int) error {
		_, err := js.Publish(ctx, fmt.Sprintf("raw.w%d", w), payload)
		return err
	}
	// The first round of each warms the server and the process; the
	// second, in the same order, is the one printed.
	rate(appendEvent)
	rate(publish)
	zdm, raw := rate(appendEvent), rate(publish)
	fmt.Printf("append throughput (%d writers, acknowledged)\n", writers)
	fmt.Printf("  zdm append (expected seq + JSON)  %9.0f events/s\n", zdm)
	fmt.Printf("  raw JetStream publish (baseline)  %9.0f events/s\n", raw)
	fmt.Printf("  ratio zdm/raw                     %9.2f\n\n", zdm/raw)

	// 2. Replay of a 100k-event history.
	subj := domain.MigrationSubject + "replay"
	var last uint64
	first := []domain.Event{domain.MigrationRequested{ID: "replay", Options: domain.Options{}.WithDefaults()}, domain.Locked{},
		domain.ProvisioningStarted{}, domain.TargetProvisioned{ClusterID: "t"}, domain.CopyStarted{}, domain.BulkCopied{}}
	if last, err = store.Append(ctx, subj, 0, domain.Batch{At: time.Now(), Events: first}); err != nil {
		log.Fatal(err)
	}
	for n := len(first); n < replayEvents; n++ {
		if last, err = store.Append(ctx, subj, last, domain.Batch{At: time.Now(), Events: []domain.Event{domain.LagSampled{LagSeconds: float64(n % 30)}}}); err != nil {
			log.Fatal(err)
		}
	}
	var m *domain.Migration
	zdmLoad := func() time.Duration {
		t0 := time.Now()
		recs, _, err := store.Load(ctx, subj, 0)
		if err != nil {
			log.Fatal(err)
		}
		if m, err = domain.Fold(recs); err != nil || len(recs) != replayEvents {
			log.Fatalf("replay: %d events, %v", len(recs), err)
		}
		return time.Since(t0)
	}
	rawRead := func() time.Duration {
		t0 := time.Now()
		cons, err := js.OrderedConsumer(ctx, eventstore.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
		if err != nil {
			log.Fatal(err)
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(4096))
		if err != nil {
			log.Fatal(err)
		}
		for n := 0; n < replayEvents-len(first)+1; n++ {
			if _, err := it.Next(); err != nil {
				log.Fatal(err)
			}
		}
		it.Stop()
		return time.Since(t0)
	}
	// Each is run once to warm the caches, then timed, in turns.
	zdmLoad()
	rawRead()
	zdmReplay, rawReplay := zdmLoad(), rawRead()
	fmt.Printf("replay of a %d-event history (state %s)\n", replayEvents, m.State)
	fmt.Printf("  zdm load + decode + fold via FSM  %9.3f s   (goal < 2 s)\n", zdmReplay.Seconds())
	fmt.Printf("  raw ordered read (baseline)       %9.3f s\n", rawReplay.Seconds())
	fmt.Printf("  ratio zdm/raw                     %9.2f\n\n", zdmReplay.Seconds()/rawReplay.Seconds())

	// 2b. Pages of that history: each reads only itself.
	page := func(after uint64) time.Duration {
		t0 := time.Now()
		recs, _, _, err := store.Page(ctx, subj, after, 500, nil)
		if err != nil || len(recs) == 0 {
			log.Fatalf("page after %d: %d events, %v", after, len(recs), err)
		}
		return time.Since(t0)
	}
	firstSeq, lastSeq := last-uint64(replayEvents-len(first)), last
	starts := []struct {
		name  string
		after uint64
	}{{"start", 0}, {"middle", (firstSeq + lastSeq) / 2}, {"end", lastSeq - 500}}
	var atStart time.Duration
	fmt.Printf("a page of 500 batches of the %d-event history (median of 5)\n", replayEvents)
	for _, st := range starts {
		var runs []time.Duration
		page(st.after)
		for range 5 {
			runs = append(runs, page(st.after))
		}
		d := pct(runs, 50)
		if st.name == "start" {
			atStart = d
		}
		fmt.Printf("  after the %-6s %9.2f ms   ratio to the start %5.2f\n", st.name, ms(d), ms(d)/ms(atStart))
	}
	fmt.Println()

	// 2c. A week of sync at the default intervals.
	weekSubj := domain.MigrationSubject + "week"
	week, err := domaintest.SyncHistory("week", time.Now().Add(-7*24*time.Hour), 20, 7*24*time.Hour, time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	var weekLast uint64
	for _, b := range week {
		if weekLast, err = store.Append(ctx, weekSubj, weekLast, b); err != nil {
			log.Fatal(err)
		}
	}
	weekLoad := func() (time.Duration, int) {
		t0 := time.Now()
		recs, _, err := store.Load(ctx, weekSubj, 0)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := domain.Fold(recs); err != nil {
			log.Fatal(err)
		}
		return time.Since(t0), len(recs)
	}
	weekLoad()
	weekReplay, weekEvents := weekLoad()
	fmt.Printf("replay of a week of sync (lag a minute + crossings, 20 collections copied)\n")
	fmt.Printf("  %d events loaded, decoded, folded  %7.3f s   (goal < 1 s)\n\n", weekEvents, weekReplay.Seconds())

	// 3. Append to projected status.
	kv, err := store.KV(ctx, "BENCH_VIEW")
	if err != nil {
		log.Fatal(err)
	}
	proj := projections.NewMigrations(kv)
	_ = proj.Load(ctx, true)
	sub, _, err := store.Consume(ctx, eventstore.ConsumeConfig{Durable: "bench-view", Filter: domain.MigrationSubject + "lat"}, proj.Handle)
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Stop()
	latSubj := domain.MigrationSubject + "lat"
	seq, _ := store.Append(ctx, latSubj, 0, domain.Batch{At: time.Now(), Events: []domain.Event{domain.MigrationRequested{ID: "lat", Options: domain.Options{}.WithDefaults()}}})
	zdmLat := make([]time.Duration, 0, latencyRuns)
	for i := 0; i < latencyRuns; i++ {
		t0 := time.Now()
		if seq, err = store.Append(ctx, latSubj, seq, domain.Batch{At: t0, Events: []domain.Event{domain.LagSampled{LagSeconds: 1}}}); err != nil {
			log.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := proj.Wait(wctx, "lat", seq); err != nil {
			log.Fatal(err)
		}
		cancel()
		zdmLat = append(zdmLat, time.Since(t0))
	}
	got := make(chan struct{}, 1)
	rawCons, err := js.CreateOrUpdateConsumer(ctx, "RAW", jetstream.ConsumerConfig{Durable: "raw-lat", FilterSubject: "raw.lat", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		log.Fatal(err)
	}
	cc, err := rawCons.Consume(func(msg jetstream.Msg) { _ = msg.Ack(); got <- struct{}{} })
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Stop()
	rawLat := make([]time.Duration, 0, latencyRuns)
	for i := 0; i < latencyRuns; i++ {
		t0 := time.Now()
		if _, err := js.Publish(ctx, "raw.lat", payload); err != nil {
			log.Fatal(err)
		}
		<-got
		rawLat = append(rawLat, time.Since(t0))
	}
	zp50, zp99 := pct(zdmLat, 50), pct(zdmLat, 99)
	rp50, rp99 := pct(rawLat, 50), pct(rawLat, 99)
	fmt.Printf("append -> projected status (%d appends)\n", latencyRuns)
	fmt.Printf("  zdm p50 %8.2f ms   p99 %8.2f ms   (goal p99 < 50 ms)\n", ms(zp50), ms(zp99))
	fmt.Printf("  raw publish -> durable consumer (baseline) p50 %8.2f ms   p99 %8.2f ms\n", ms(rp50), ms(rp99))
	fmt.Printf("  ratio zdm/raw p50 %6.2f   p99 %6.2f\n\n", ms(zp50)/ms(rp50), ms(zp99)/ms(rp99))

	// 4. A command's read of the events its instance lacks, on a cluster.
	if err := clusterLoads(ctx, dir); err != nil {
		log.Fatal(err)
	}

	// 5. A lost NATS node.
	if err := nodeLoss(ctx, dir); err != nil {
		log.Fatal(err)
	}
}

// rate runs fn from `writers` goroutines for about two seconds and returns
// completed calls per second, over the time the last call took to end. A
// failed call ends the bench: a rate of what failed would mean nothing.
func rate(fn func(w, i int) error) float64 {
	var wg sync.WaitGroup
	counts := make([]int, writers)
	deadline := time.Now().Add(2 * time.Second)
	t0 := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				if err := fn(w, i); err != nil {
					log.Fatalf("a timed call failed: %v", err)
				}
				counts[w]++
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, c := range counts {
		total += c
	}
	return float64(total) / time.Since(t0).Seconds()
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
