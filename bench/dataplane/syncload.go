package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/domain"
)

// syncLoad measures the proxy's rate against direct writes while a
// migration syncs (the applier replaying every proxied write on the
// target), with the applier reading the journal on the proxy's NATS
// connection, as zdmd does, and on one of its own. Each round's CPU per row
// on every side shows the bound: the target's replay of every proxied
// write takes the cores the source's inserts would have had.
func syncLoad(ctx context.Context, src, dst *milvus.Conn, logger *slog.Logger) {
	col, err := src.DescribeCollection(ctx, "bench_db0", "bench_c0")
	must(err)
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 0, Dim: *dim, PKType: "int64", Index: "FLAT", Load: true, Shards: 2, Prefix: "bench_"}
	must(dst.DropEverything(ctx))
	must(datatools.Seed(ctx, dst, shape, nil))
	for i, own := range []bool{false, true, false, true} {
		dir, _ := os.MkdirTemp("", "zdm-syncload-")
		emb, store, journal := embeddedJournal(ctx, dir)
		readJournal := journal
		if own {
			rnc, err := emb.Connect("bench-journal-read")
			must(err)
			readJournal, err = store.OpenJournalOn(ctx, rnc)
			must(err)
		}
		positions, err := store.KV(ctx, "APPLY")
		must(err)
		given, err := store.KV(ctx, "GIVEN_KEYS")
		must(err)
		m := migrationFor(domain.CopyStarted{Collections: []domain.CollectionPlan{{Database: "bench_db0", Collection: "bench_c0"}}})
		must(m.Apply(domain.Record{Seq: 10, At: time.Now(), Event: domain.BulkCopyProgressed{Database: "bench_db0", Collection: "bench_c0", Range: "all", Done: true}}))
		must(m.Apply(domain.Record{Seq: 11, At: time.Now(), Event: domain.BulkCopied{}}))
		c := capture.NewCapture(journal, noFailer{}, logger)
		c.KeepGivenKeys(given)
		sctx, cancel := context.WithCancel(ctx)
		syncer := livesync.NewSyncer(sctx, endpoints{"src": *source, "dst": *target}, c, readJournal, positions, reader{m}, noFailer{},
			livesync.Config{FingerprintEvery: time.Hour, LagEvery: lagEvery}, logger)
		must(syncer.Arm(ctx, m))
		addr, stop := startProxy(c, *source, logger)
		via := dial(ctx, addr)
		settle()
		for _, clients := range []int{4, 16, 64} {
			base := 9e10 + int64(i)*1e10 + int64(clients)*1e8
			p, pcpu := loadRound(ctx, via, col, clients, base)
			d, dcpu := loadRound(ctx, src, col, clients, base+5e7)
			fmt.Printf("  applier reads on its own connection=%-5v %2d clients: proxy %6.0f rows/s, direct %6.0f rows/s (%.2f); CPU per row µs bench/source/target: proxy %.0f/%.0f/%.0f, direct %.0f/%.0f/%.0f; the cores allow %.2f; cores busy proxy %.2f, direct %.2f\n",
				own, clients, p.rate, d.rate, p.rate/d.rate, pcpu.self, pcpu.source, pcpu.target, dcpu.self, dcpu.source, dcpu.target,
				(dcpu.self+dcpu.source+dcpu.target)/(pcpu.self+pcpu.source+pcpu.target), busy(p), busy(d))
		}
		via.Close()
		stop()
		cancel()
		syncer.Wait()
		emb.Close()
		os.RemoveAll(dir)
	}
}

// loadRound is insertThroughput from an idle bed, with the CPU each row
// cost until the bed is idle again: through the proxy that includes the
// applier's replay on the target, which goes on after the last answer.
func loadRound(ctx context.Context, c *milvus.Conn, col *milvus.Collection, clients int, base int64) (round, cpuRow) {
	settle()
	before := cpuNow()
	r := insertThroughput(ctx, c, col, clients, 3*time.Second, base)
	settle()
	used := cpuNow().since(before)
	rows := int64(r.rate * r.wall.Seconds())
	return r, cpuRow{self: perRow(used.self, rows), source: perRow(used.source, rows), target: perRow(used.target, rows)}
}

// busy is how many cores a round kept busy while it ran (the bench
// process, both servers): near 2 on this machine, the round was bound by
// CPU, not by waiting.
func busy(r round) float64 {
	return (r.cpu + r.src + r.dst).Seconds() / r.wall.Seconds()
}
