package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/natscluster"
)

// journalSetup is where a capture's journal lives for proxyReplicas.
type journalSetup struct {
	name string
	// relayed sends the writes to an instance that relays them to the
	// one that captures, as a load balancer does for two in three calls.
	relayed bool
	// unarmed leaves the capture unarmed: the proxy's hop alone.
	unarmed bool
	store   *eventstore.Store
	journal *eventstore.Journal
	// natsCPU is the CPU of each NATS server outside this process (none:
	// embedded).
	natsCPU func() []time.Duration
}

// proxyReplicas measures the capture with its journal on one
// NATS replica (the embedded server zdmd runs alone) and on three (a
// cluster of three zdm-nats processes on this host, as zdm runs
// highly available), each against direct writes in the same rounds.
func proxyReplicas(ctx context.Context, src *milvus.Conn, logger *slog.Logger) {
	col, err := src.DescribeCollection(ctx, "bench_db0", "bench_c0")
	must(err)
	dir, _ := os.MkdirTemp("", "zdm-bench-replicas-")
	defer os.RemoveAll(dir)

	r1 := journalSetup{name: "1 replica (embedded)", natsCPU: func() []time.Duration { return nil }}
	var emb *eventstore.Embedded
	emb, r1.store, r1.journal = embeddedJournal(ctx, dir+"/r1")
	defer emb.Close()

	cluster, err := natscluster.Start(ctx, dir+"/r3", 3)
	must(err)
	defer cluster.Stop()
	cnc, err := nats.Connect(cluster.URLs())
	must(err)
	cjnc, err := nats.Connect(cluster.URLs())
	must(err)
	r3 := journalSetup{name: "3 replicas (cluster)", natsCPU: func() []time.Duration {
		var out []time.Duration
		for _, pid := range cluster.PIDs() {
			out = append(out, pidCPU([]int{pid}))
		}
		return out
	}}
	r3.store, err = eventstore.OpenReplicated(ctx, cnc, 3)
	must(err)
	r3.journal, err = r3.store.OpenJournalOn(ctx, cjnc)
	must(err)

	r3relayed := r3
	r3relayed.name, r3relayed.relayed = "3 replicas, relayed", true
	hop := r1
	hop.name, hop.unarmed = "proxy alone (unarmed)", true

	const clients, rounds = 4, 8
	// groupOf is how many writes one message carries in the grouped
	// measure: one per client.
	const groupOf = clients
	fmt.Printf("capture cost by NATS replicas: %d clients inserting 100-row batches, direct and through the armed proxy in alternating one-second rounds\n", clients)
	for i, s := range []journalSetup{hop, r1, r3, r3relayed} {
		given, err := s.store.KV(ctx, "BENCH_GIVEN_KEYS")
		must(err)
		migration := fmt.Sprintf("benchreplicas%d", i)
		// Where JetStream alone is given the capture's messages again.
		aloneSubject := "zdm.journal.benchalone" + migration + ".x.x"
		rec := &recordedJournal{JournalLog: s.journal}
		c := capture.NewCapture(rec, noFailer{}, logger)
		c.KeepGivenKeys(given)
		if !s.unarmed {
			c.Arm("src", migration, domain.Options{OnForbiddenOp: domain.PolicyReject})
		}
		start := startProxy
		if s.relayed {
			start = startRelayed
		}
		addr, stop := start(c, *source, logger)
		via := dial(ctx, addr)
		settle()
		var direct, proxied []time.Duration
		for r := 0; r < 4; r++ {
			base := 7e10 + int64(i)*1e9 + int64(r)*1e7
			direct = append(direct, insertLatencies(ctx, src, col, 25, base)...)
			proxied = append(proxied, insertLatencies(ctx, via, col, 25, base+5e6)...)
		}
		var dRates, pRates []float64
		var dSelf, pSelf, dSrc time.Duration
		pNATS := make([]time.Duration, len(s.natsCPU()))
		var dBatches, pBatches float64
		// JetStream alone: each round's captured appends made again
		// straight to the journal, in the same conditions.
		var alone []recordedAppend
		var aloneCPU, groupedCPU time.Duration
		for r := 0; r < rounds; r++ {
			base := 8e10 + int64(i)*1e10 + int64(r)*1e8
			n0 := s.natsCPU()
			rec.record()
			p := insertThroughput(ctx, via, col, clients, time.Second, base)
			for k, n := range s.natsCPU() {
				pNATS[k] += n - n0[k]
			}
			if !s.unarmed {
				// The last outcomes go in entries of their own 10 ms on.
				time.Sleep(50 * time.Millisecond)
				appends := rec.recorded()
				alone = append(alone, appends...)
				aloneCPU += journalAlone(ctx, s, aloneSubject, appends)
				groupedCPU += journalAlone(ctx, s, aloneSubject, grouped(appends, groupOf))
			}
			d := insertThroughput(ctx, src, col, clients, time.Second, base+5e7)
			dRates, pRates = append(dRates, d.rate), append(pRates, p.rate)
			dSelf, pSelf, dSrc = dSelf+d.cpu, pSelf+p.cpu, dSrc+d.src
			dBatches, pBatches = dBatches+d.rate*d.wall.Seconds()/100, pBatches+p.rate*p.wall.Seconds()/100
		}
		perBatch := func(d time.Duration, n float64) float64 { return float64(d.Microseconds()) / max(n, 1) }
		capturePer := perBatch(pSelf+sum(pNATS), pBatches) - perBatch(dSelf, dBatches)
		sourcePer := perBatch(dSrc, dBatches)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		fmt.Printf("  %-21s p50 added %5.2f ms (goal <= 1 ms); throughput proxy/direct %.2f (%.0f against %.0f rows/s);\n",
			s.name, ms(pct(proxied, 50))-ms(pct(direct, 50)), median(pRates)/median(dRates), median(pRates), median(dRates))
		fmt.Printf("  %-21s capture's CPU per write %.0f us (proxy, journal and NATS, less the client's), the source server's %.0f us: %.2f of it (goal < 0.1)\n",
			"", capturePer, sourcePer, capturePer/max(sourcePer, 1))
		if len(pNATS) > 1 {
			// On hosts of their own, each NATS server's CPU is its host's: the
			// capturing zdmd's host carries its own and at most the busiest
			// server's (the stream's leader).
			hostPer := perBatch(pSelf+slices.Max(pNATS), pBatches) - perBatch(dSelf, dBatches)
			fmt.Printf("  %-21s of it the NATS servers' %.0f us (the busiest %.0f us); on the zdmd's host, were each server on its own: %.0f us, %.2f of the source's\n",
				"", perBatch(sum(pNATS), pBatches), perBatch(slices.Max(pNATS), pBatches), hostPer, hostPer/max(sourcePer, 1))
		}
		if !s.unarmed {
			floor := perBatch(aloneCPU, pBatches)
			var bytes int
			for _, a := range alone {
				bytes += a.size
			}
			size := bytes / max(len(alone), 1)
			lone := appendLatencies(ctx, s, aloneSubject, size, len(proxied), func(k int) {
				insertLatencies(ctx, src, col, 1, 9e10+int64(i)*1e9+int64(k)*1e3)
			})
			fmt.Printf("  %-21s JetStream alone, the same %d messages (%d bytes on average) at the same moments: %.0f us per write, %.2f of the source's;\n",
				"", len(alone), size, floor, floor/max(sourcePer, 1))
			byGroup := perBatch(groupedCPU, pBatches)
			fmt.Printf("  %-21s JetStream alone, the same bytes in messages of %d writes each (what journaling writes together would save at most): %.0f us per write, %.2f of the source's;\n",
				"", groupOf, byGroup, byGroup/max(sourcePer, 1))
			fmt.Printf("  %-21s one at a time, each before the same insert sent straight to the source, as the lone client's writes came: JetStream acknowledged each in %.2f ms (p50) of the %.2f ms added\n",
				"", ms(pct(lone, 50)), ms(pct(proxied, 50))-ms(pct(direct, 50)))
			fmt.Printf("  %-21s the capture less it %.0f us, %.2f of the source's: what zdm adds to what JetStream costs on its own\n",
				"", capturePer-floor, (capturePer-floor)/max(sourcePer, 1))
		}
		if oc := c.OutcomesJournaled(); !s.unarmed {
			fmt.Printf("  %-21s outcomes: %d of %d rode with a later write's entry, %d went in %d entries of their own\n",
				"", oc.Carried, oc.Carried+oc.Alone, oc.Alone, oc.Entries)
		}
		via.Close()
		stop()
		c.Disarm(migration)
	}
	fmt.Println("  (proxy alone: the same hop with no migration armed, nothing journaled; the rows below it add the capture to it;")
	fmt.Println("  NATS's CPU is in this process with one replica, in three zdm-nats processes with three; all share the cores with both Milvus servers;")
	fmt.Println("  relayed: the writes reach an instance that does not drive and relays them to the one that does, both in this process)")
	fmt.Println()
}

func sum[T time.Duration | float64](ds []T) T {
	var t T
	for _, d := range ds {
		t += d
	}
	return t
}
