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

// segmentCopy copies the collection by its segments, timed as the row
// copy is: from an empty target to the collection loaded there, with its
// index. The source only flushes and lists; its files are read straight
// from its storage.
func segmentCopy(ctx context.Context, src, dst *milvus.Conn, col *milvus.Collection) (float64, cpuRow, time.Duration) {
	must(dst.DropEverything(ctx))
	stage := fmt.Sprintf("zdm-import/bench-%d", time.Now().UnixNano())
	c := &segcopy.Copier{Source: segcopy.Local{Root: serverData("source")}, Target: segcopy.Local{Root: serverData("target")}, Stage: stage}
	defer os.RemoveAll(filepath.Join(serverData("target"), "zdm-import"))
	clock := startClock()
	must(dst.CreateDatabase(ctx, col.Database))
	must(dst.CreateCollection(ctx, col.Database, col.Schema, milvus.CollectionSettings{Shards: col.ShardsNum}))
	listing, err := segcopy.List(ctx, src, col.Database, col.Name)
	must(err)
	var imported int64
	var copyTook time.Duration
	for _, p := range listing.Partitions {
		if len(p.Segments) == 0 {
			continue
		}
		t0 := time.Now()
		for _, s := range p.Segments {
			_, err := c.CopySegment(ctx, listing.Collection, p.ID, s)
			must(err)
		}
		copyTook += time.Since(t0)
		if p.Name != "_default" {
			must(dst.CreatePartition(ctx, col.Database, col.Name, p.Name))
		}
		n, err := c.Import(ctx, dst, col.Database, col.Name, p.Name, listing.Collection, p.ID)
		must(err)
		imported += n
	}
	for _, idx := range col.Indexes {
		must(dst.CreateIndex(ctx, col.Database, col.Name, idx))
	}
	must(dst.Load(ctx, col.Database, col.Name))
	rate, cpu := clock.stop(*rows)
	if imported != *rows {
		log.Fatalf("the segment copy imported %d rows, want %d", imported, *rows)
	}
	return rate, cpu, copyTook
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
		segRate, segCPU, files := segmentCopy(ctx, src, dst, col)
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
		fmt.Printf("  turn %d: segments/ceiling %.2f (goal >= 1.5), segments/rows %.2f; the source's CPU per row %.2f of the row copy's;\n",
			turn, segRate/ceilRate, segRate/z.rate, segCPU.source/max(z.cpu.source, 0.001))
		fmt.Printf("    the files took %.2f s to copy\n", files.Seconds())
	}
	fmt.Println("  (the source's part of the segment copy is its flush and the listing; an idle Milvus 2.3 here uses about a")
	fmt.Println("  tenth of a core by itself, which the per-row figure counts too)")
	fmt.Println()
}
