package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/domain"
)

var (
	manyCollections = flag.Int("many-collections", 40, "collections of the many-collections copy (0: skip it)")
	manyRows        = flag.Int("many-rows", 1000, "rows of each of them")
	manyMode        = flag.String("many-mode", domain.CopyModeRows, "copy mode of the many-collections copy: rows, or segments (the test bed's servers given with their storage)")
)

// manyCopy measures how long a source of many small collections waits
// before its first row moves, until every collection is planned and until
// its copy ends, with one collection planned and made at a time (the
// baseline) and with the copier's default, on the same data in the same
// run.
func manyCopy(ctx context.Context, src, dst *milvus.Conn, logger *slog.Logger) {
	n := *manyCollections
	if n <= 0 {
		return
	}
	must(src.DropEverything(ctx))
	// Seeded ten collections at a time, a database holding at most 250.
	var g errgroup.Group
	g.SetLimit(4)
	for i := 0; i < n; i += 10 {
		shape := datatools.Shape{Databases: 1, Collections: min(10, n-i), Rows: int64(*manyRows), Dim: 16, PKType: "int64", Index: "FLAT",
			Load: true, Shards: 1, Seed: 11, Prefix: fmt.Sprintf("many%d_", i/10)}
		g.Go(func() error { return datatools.Seed(ctx, src, shape, nil) })
	}
	t0 := time.Now()
	must(g.Wait())
	fmt.Printf("copy of %d collections x %d rows by %s (seeded in %s)\n", n, *manyRows, *manyMode, time.Since(t0).Round(time.Second))
	var resolve milvus.Resolver = endpoints{"src": *source, "dst": *target}
	switch *manyMode {
	case domain.CopyModeRows:
	case domain.CopyModeSegments:
		resolve = withStorage{}
	default:
		log.Fatalf("-many-mode %q: want rows or segments", *manyMode)
	}
	fmt.Printf("  %-8s  %-15s  %-17s  %-25s  %s\n", "planners", "preflight", "first row moved", "every collection planned", "copy ended")
	defaults := rowcopy.Config{}.WithDefaults().Planners
	var base [4]time.Duration
	for _, planners := range []int{1, defaults} {
		must(dst.DropEverything(ctx))
		settle()
		c := rowcopy.NewCopier(resolve, rowcopy.Config{Workers: workers, Planners: planners}, logger)
		began := time.Now()
		plan, err := c.Plan(ctx, migrationFor(domain.CopyStarted{}))
		must(err)
		preflight := time.Since(began)
		var first, lastPlan time.Duration
		var mu sync.Mutex
		must(c.Copy(ctx, migrationFor(plan), func(_ context.Context, p domain.BulkCopyProgressed) error {
			mu.Lock()
			defer mu.Unlock()
			if p.Plan != nil {
				lastPlan = time.Since(began)
			} else if first == 0 && p.Rows > 0 {
				first = time.Since(began)
			}
			return nil
		}))
		ended := time.Since(began)
		var copied int64
		for _, cp := range plan.Collections {
			m, err := dst.CountWhere(ctx, cp.Database, cp.Collection, "")
			must(err)
			copied += m
		}
		if want := int64(n * *manyRows); copied != want {
			log.Fatalf("the copy with %d planners left %d rows on the target, want %d", planners, copied, want)
		}
		row := [4]time.Duration{preflight, first, lastPlan, ended}
		if planners == 1 {
			base = row
		}
		cell := func(i int) string {
			s := row[i].Round(10 * time.Millisecond).String()
			if planners != 1 {
				s += fmt.Sprintf(" (%.2fx)", base[i].Seconds()/row[i].Seconds())
			}
			return s
		}
		fmt.Printf("  %-8d  %-15s  %-17s  %-25s  %s\n", planners, cell(0), cell(1), cell(2), cell(3))
	}
	fmt.Println("  (x: times sooner than one collection at a time. When every collection was planned before")
	fmt.Println("  the copy began, one at a time, no row moved before the planners-1 row's \"every collection planned\")")
	fmt.Println()
	must(src.DropEverything(ctx))
	must(dst.DropEverything(ctx))
}
