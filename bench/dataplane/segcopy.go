package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/domain"
)

// serverData is where a test-bed server keeps its storage.
func serverData(name string) string {
	abs, err := filepath.Abs(filepath.Join(bedRoot(), "servers", name, "data"))
	must(err)
	return abs
}

// withStorage resolves the test bed's servers with their storage, so the
// copier's preflight chooses segments.
type withStorage struct{}

func (withStorage) Endpoint(_ context.Context, id string) (milvus.Endpoint, error) {
	if id == "src" {
		return milvus.Endpoint{Address: *source, StoragePath: serverData("source")}, nil
	}
	return milvus.Endpoint{Address: *target, StoragePath: serverData("target")}, nil
}

// segPhases is where a segment copy's time went, read from its
// checkpoints' times.
type segPhases struct {
	list, stage, imports, load time.Duration
	importCPU                  cpuRow // CPU per row over the imports alone
}

// segmentCopy copies the collection with zdm's copier in segment mode,
// timed as the row copy is: from an empty target (the plan made before)
// to the collection indexed and loaded there. The source only flushes and
// lists; its files are read straight from its storage.
func segmentCopy(ctx context.Context, dst *milvus.Conn, logger *slog.Logger) (float64, cpuRow, segPhases) {
	must(dst.DropEverything(ctx))
	c := rowcopy.NewCopier(withStorage{}, rowcopy.Config{}, logger)
	plan, err := c.Plan(ctx, migrationFor(domain.CopyStarted{}))
	must(err)
	m := migrationFor(plan)
	if ch := string(m.Preflight); !strings.Contains(ch, `"copy_mode":"segments"`) {
		log.Fatalf("the preflight did not choose segments: %s", ch)
	}
	var ph segPhases
	var imported int64
	var lastStep time.Time
	var stepCPU cpuUse
	clock := startClock()
	must(c.Copy(ctx, m, func(_ context.Context, p domain.BulkCopyProgressed) error {
		now, cpu := time.Now(), cpuNow()
		switch {
		case p.Plan != nil:
			ph.list = now.Sub(clock.began)
		case strings.HasPrefix(p.Range, domain.SegmentStep+"/"):
			ph.stage += now.Sub(lastStep)
		case strings.HasPrefix(p.Range, domain.ImportStep+"/"):
			ph.imports += now.Sub(lastStep)
			d := cpu.since(stepCPU)
			ph.importCPU = cpuRow{self: perRow(d.self, p.Rows), source: perRow(d.source, p.Rows), target: perRow(d.target, p.Rows)}
			imported += p.Rows
		}
		lastStep, stepCPU = now, cpu
		return nil
	}))
	ph.load = time.Since(lastStep)
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
	fmt.Printf("segment copy of %d rows (%d dims), zdm's copier in segment mode: binlogs copied file by file from the source's storage\n", *rows, *dim)
	fmt.Println("  to the target's, imported per partition; every side timed from an empty target to the collection indexed and loaded there")
	fmt.Printf("  %-6s %-14s %-12s %-44s\n", "turn", "side", "rows/s", "CPU per row, us: zdm / source / target")
	for turn := 1; turn <= 2; turn++ {
		settle()
		// What the source uses idle, per second, so that what a copy
		// costs it can be told from what it costs anyway.
		i0 := cpuNow()
		time.Sleep(2 * time.Second)
		idle := cpuNow().since(i0).source.Seconds() / 2 * 1e6 // us per second
		segRate, segCPU, ph := segmentCopy(ctx, dst, quiet)
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
		fmt.Printf("    the segment copy's window: the collection made, flushed and listed %.2f s, files staged %.2f s, import %.2f s (the target's CPU %.1f us\n",
			ph.list.Seconds(), ph.stage.Seconds(), ph.imports.Seconds(), ph.importCPU.target)
		fmt.Printf("    per row over it), the load %.2f s\n", ph.load.Seconds())
		// On shared cores a copy goes no faster than the cores over its
		// CPU per row (every process's); the segment copy stays under
		// that bound where it waits on one import task at a time.
		all := func(c cpuRow) float64 { return c.self + c.source + c.target }
		fmt.Printf("    if CPU is what bounds both, the cores allow segments/ceiling = %.2f (CPU per row in all: ceiling %.1f us,\n",
			all(ceilCPU)/max(all(segCPU), 0.001), all(ceilCPU))
		fmt.Printf("    segments %.1f us); the cores were busy %.2f of the segment copy's window, %.2f of the ceiling's\n",
			all(segCPU), segRate*all(segCPU)/1e6/float64(runtime.NumCPU()), ceilRate*all(ceilCPU)/1e6/float64(runtime.NumCPU()))
	}
	fmt.Println("  (the source's part of the segment copy is its flush and the listing; an idle Milvus 2.3 here uses about a")
	fmt.Println("  tenth of a core by itself, which the per-row figures count; \"above idle\" takes out the rate measured idle")
	fmt.Println("  for 2 s before the turn)")
	fmt.Println()
}
