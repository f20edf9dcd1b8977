package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/segcopy"
)

// serverData is where a test-bed server keeps its storage.
func serverData(name string) string {
	root := os.Getenv("ZDM_MILVUS_ROOT")
	if root == "" {
		root = ".cache/milvus"
	}
	abs, err := filepath.Abs(filepath.Join(root, "servers", name, "data"))
	must(err)
	return abs
}

// segPhases is where a segment copy's time went.
type segPhases struct {
	list, stage, imports, indexLoad time.Duration
	importCPU                       cpuRow // CPU per row over the imports alone
}

// segmentCopy copies the collection by its segments, timed as the row
// copy is: from an empty target to the collection loaded there, with its
// index. The source only flushes and lists; its files are read straight
// from its storage.
func segmentCopy(ctx context.Context, src, dst *milvus.Conn, col *milvus.Collection) (float64, cpuRow, segPhases) {
	must(dst.DropEverything(ctx))
	stage := fmt.Sprintf("zdm-import/bench-%d", time.Now().UnixNano())
	c := &segcopy.Copier{Source: segcopy.Local{Root: serverData("source")}, Target: segcopy.Local{Root: serverData("target")}, Stage: stage}
	defer os.RemoveAll(filepath.Join(serverData("target"), "zdm-import"))
	var ph segPhases
	clock := startClock()
	must(dst.CreateDatabase(ctx, col.Database))
	must(dst.CreateCollection(ctx, col.Database, col.Schema, milvus.CollectionSettings{Shards: col.ShardsNum}))
	// As the copy does: the index first, so that it is built as the
	// imported segments land; the load once they are in.
	for _, idx := range col.Indexes {
		must(dst.CreateIndex(ctx, col.Database, col.Name, idx))
	}
	t0 := time.Now()
	listing, err := segcopy.List(ctx, src, col.Database, col.Name)
	must(err)
	ph.list = time.Since(t0)
	var imported int64
	for _, p := range listing.Partitions {
		if len(p.Segments) == 0 {
			continue
		}
		t0 := time.Now()
		for _, s := range p.Segments {
			_, err := c.CopySegment(ctx, listing.Collection, p.ID, s)
			must(err)
		}
		ph.stage += time.Since(t0)
		if p.Name != "_default" {
			must(dst.CreatePartition(ctx, col.Database, col.Name, p.Name))
		}
		t0, cpu0 := time.Now(), cpuNow()
		n, err := c.Import(ctx, dst, col.Database, col.Name, p.Name, listing.Collection, p.ID)
		must(err)
		ph.imports += time.Since(t0)
		d := cpuNow().since(cpu0)
		ph.importCPU = cpuRow{self: perRow(d.self, n), source: perRow(d.source, n), target: perRow(d.target, n)}
		imported += n
	}
	t0 = time.Now()
	must(dst.Load(ctx, col.Database, col.Name))
	ph.indexLoad = time.Since(t0)
	rate, cpu := clock.stop(*rows)
	if imported != *rows {
		log.Fatalf("the segment copy imported %d rows, want %d", imported, *rows)
	}
	return rate, cpu, ph
}

// benchSegmentCopy prints the segment copy against the row copy and the
// insert ceiling on the same collection, in turns.
func benchSegmentCopy(ctx context.Context, src, dst *milvus.Conn, col *milvus.Collection, quiet *slog.Logger) {
	usePageDefaults(col)
	fmt.Printf("segment copy of %d rows (%d dims): binlogs copied file by file from the source's storage to the target's, imported\n", *rows, *dim)
	fmt.Println("  per partition; every side timed from an empty target to the collection indexed and loaded there")
	fmt.Printf("  %-6s %-14s %-12s %-44s\n", "turn", "side", "rows/s", "CPU per row, us: zdm / source / target")
	for turn := 1; turn <= 2; turn++ {
		settle()
		// What the source uses idle, per second, so that what a copy
		// costs it can be told from what it costs anyway.
		i0 := cpuNow()
		time.Sleep(2 * time.Second)
		idle := cpuNow().since(i0).source.Seconds() / 2 * 1e6 // us per second
		segRate, segCPU, ph := segmentCopy(ctx, src, dst, col)
		must(dst.DropEverything(ctx))
		settle()
		z := copyWithZdm(ctx, src, dst, col, quiet)
		settle()
		ceilRate, ceilCPU := insertCeiling(ctx, dst, col)
		for _, r := range []struct {
			name string
			rate float64
			cpu  cpuRow
		}{{"segments", segRate, segCPU}, {"rows", z.rate, z.cpu}, {"ceiling", ceilRate, ceilCPU}} {
			fmt.Printf("  %-6d %-14s %-12.0f %.1f / %.1f / %.1f\n", turn, r.name, r.rate, r.cpu.self, r.cpu.source, r.cpu.target)
		}
		net := func(perRow, rate float64) float64 { return max(perRow-idle/rate, 0) }
		fmt.Printf("  turn %d: segments/ceiling %.2f (goal >= 1.5), segments/rows %.2f; the source's CPU per row %.2f of the row copy's,\n",
			turn, segRate/ceilRate, segRate/z.rate, segCPU.source/max(z.cpu.source, 0.001))
		fmt.Printf("    %.2f above its idle use (%.0f us/s: %.1f and %.1f us per row above idle; goal < 0.05)\n",
			net(segCPU.source, segRate)/max(net(z.cpu.source, z.rate), 0.001), idle, net(segCPU.source, segRate), net(z.cpu.source, z.rate))
		fmt.Printf("    the segment copy's window: flush and list %.2f s, files staged %.2f s, import %.2f s (the target's CPU %.1f us\n",
			ph.list.Seconds(), ph.stage.Seconds(), ph.imports.Seconds(), ph.importCPU.target)
		fmt.Printf("    per row over it), the load %.2f s\n", ph.indexLoad.Seconds())
	}
	fmt.Println("  (the source's part of the segment copy is its flush and the listing; an idle Milvus 2.3 here uses about a")
	fmt.Println("  tenth of a core by itself, which the per-row figures count; \"above idle\" takes out the rate measured idle")
	fmt.Println("  for 2 s before the turn)")
	fmt.Println()
}
