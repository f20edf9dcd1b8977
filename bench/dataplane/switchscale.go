package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
)

var (
	switchCollections = flag.String("switch-collections", "10,50", "collection counts of the switch-pause bench, comma-separated (\"\": skip it)")
	switchLoaded      = flag.Int("switch-loaded", 0, "load only this many of each count's collections (0: all); the others are made without an index and not loaded, "+
		"so that counts the test bed cannot load (1,000) can be measured")
)

// switchScale measures the switch's write pause on sources of each
// collection count, a client writing to two of the collections: the check
// made while writes are held visits only the collections written since
// the check made before the hold, so the pause should not grow with the
// count.
func switchScale(ctx context.Context, src, dst *milvus.Conn, store *eventstore.Store, journal capture.JournalLog, positions livesync.Positions, logger *slog.Logger) {
	if *switchCollections == "" {
		return
	}
	fmt.Println("switch pause by collection count (a client writing 20 batches/s to two collections through the proxy)")
	for _, f := range strings.Split(*switchCollections, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		must(err)
		must(src.DropEverything(ctx))
		must(dst.DropEverything(ctx))
		loaded := n
		if *switchLoaded > 0 {
			loaded = min(n, max(*switchLoaded, 2))
		}
		// A database holds at most 256 collections here: the counts are
		// spread over as many as they need.
		var shapes []datatools.Shape
		add := func(count int, index string, load bool, tag string) {
			for i := 0; count > 0; i++ {
				k := min(count, 250)
				shapes = append(shapes, datatools.Shape{Databases: 1, Collections: k, Rows: 20, Dim: 8, PKType: "int64", Index: index, Load: load,
					Shards: 1, Seed: 5, Prefix: fmt.Sprintf("sw%d%s%d_", n, tag, i)})
				count -= k
			}
		}
		add(loaded, "FLAT", true, "l")
		add(n-loaded, "none", false, "u")
		began := time.Now()
		// Both servers at once: making, indexing and loading a collection
		// takes the test bed's Milvus about three seconds.
		var g errgroup.Group
		for _, shape := range shapes {
			g.Go(func() error { return datatools.Seed(ctx, src, shape, nil) })
			g.Go(func() error { return datatools.Seed(ctx, dst, shape, nil) })
		}
		must(g.Wait())
		seeded := time.Since(began)
		var plan domain.CopyStarted
		var names []datatools.CollectionName
		for _, shape := range shapes {
			for j := range shape.Collections {
				c := datatools.CollectionName{Database: shape.DatabaseNames()[0], Collection: shape.CollectionName(j)}
				names = append(names, c)
				plan.Collections = append(plan.Collections, domain.CollectionPlan{Database: c.Database, Collection: c.Collection})
			}
		}
		m := migrationFor(plan)
		seq := uint64(10)
		for _, c := range names {
			seq++
			must(m.Apply(domain.Record{Seq: seq, At: time.Now(), Event: domain.BulkCopyProgressed{Database: c.Database, Collection: c.Collection, Range: "all", Done: true}}))
		}
		must(m.Apply(domain.Record{Seq: seq + 1, At: time.Now(), Event: domain.BulkCopied{}}))
		c := capture.NewCapture(journal, noFailer{}, logger)
		syncer := livesync.NewSyncer(ctx, endpoints{"src": *source, "dst": *target}, c, journal, positions, reader{m}, noFailer{},
			livesync.Config{FingerprintEvery: time.Hour, LagEvery: lagEvery}, logger)
		must(syncer.Arm(ctx, m))
		addr, stop := startProxy(c, *source, logger)
		via := dial(ctx, addr)
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan datatools.LoadStats)
		go func() {
			st, _ := datatools.Load(wctx, via, datatools.LoadConfig{Targets: names[:min(2, n)], Rate: 20, Mix: datatools.Mix{Insert: 70, Upsert: 20, Delete: 10}, Batch: 5, Workers: 2, Seed: 3}, &discard{})
			done <- st
		}()
		time.Sleep(3 * time.Second)
		listing := listingTime(ctx, src)
		sw, check, route, err := syncer.Switch(ctx, m)
		must(err)
		route(true)
		time.Sleep(time.Second)
		cancel()
		stats := <-done
		fmt.Printf("  %5d collections, %d loaded (seeded on both in %s): writes held %.0f ms (drain %.0f ms, check %.0f ms), equal=%v; client's longest gap %s, %d failed; listing the source just before took %s\n",
			n, loaded, seeded.Round(time.Second), sw.WritePauseMS, sw.DrainMS, sw.CheckMS, check.Equal, stats.MaxGap.Round(time.Millisecond), stats.Failed, listing.Round(time.Millisecond))
		via.Close()
		stop()
		must(syncer.Disarm(ctx, m))
	}
	fmt.Println()
}

// listingTime is how long listing every database's collections takes the
// source, one database after the other: what the check while writes are
// held does besides its reads.
func listingTime(ctx context.Context, src *milvus.Conn) time.Duration {
	began := time.Now()
	dbs, err := src.Databases(ctx)
	must(err)
	for _, db := range dbs {
		_, err := src.CollectionNames(ctx, db)
		must(err)
	}
	return time.Since(began)
}
