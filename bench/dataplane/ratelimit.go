package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/domain"
)

// rateLimitCopy copies the collection once without a limit and once with
// options.copy_rate_limit at a sixth of that rate, raised to a third
// mid-copy the way an operator's PATCH would (the copier reads the limit
// every second), then lifted. It prints the rate each window held against
// its limit, and the source's CPU per second against the unlimited copy's.
func rateLimitCopy(ctx context.Context, src, dst *milvus.Conn, col *milvus.Collection, logger *slog.Logger) {
	// Ranges of 1,000 rows: checkpoints fine enough to measure a window
	// of ten seconds by.
	cfg := rowcopy.Config{Workers: workers, Readers: readers, PageRows: page, RangeRows: 1000}
	type window struct {
		name       string
		limit      int64
		from, to   time.Duration
		rows       int64
		sourceCPU  time.Duration
		cpuAtStart cpuUse
	}
	copyOnce := func(limit int64, windows []*window) time.Duration {
		must(dst.DropEverything(ctx))
		settle()
		var current atomic.Int64
		current.Store(limit)
		c := rowcopy.NewCopier(endpoints{"src": *source, "dst": *target}, cfg, logger)
		c.FollowRateLimit(func(context.Context, string) (int64, error) { return current.Load(), nil })
		m := migrationFor(domain.CopyStarted{})
		plan, err := c.Plan(ctx, m)
		must(err)
		m = migrationFor(plan)
		m.Options.CopyRateLimit = limit
		began := time.Now()
		var mu sync.Mutex
		done := make(chan error, 1)
		go func() {
			done <- c.Copy(ctx, m, func(_ context.Context, p domain.BulkCopyProgressed) error {
				at := time.Since(began)
				mu.Lock()
				defer mu.Unlock()
				for _, w := range windows {
					if at >= w.from && at < w.to {
						w.rows += p.Rows
					}
				}
				return nil
			})
		}()
		// Each window's limit is set a second and a half before it
		// opens: the copier reads it every second.
		for _, w := range windows {
			select {
			case err := <-done:
				must(err)
				log.Fatalf("the copy ended before the %s window: lower the limits or copy more rows (-rows)", w.name)
			case <-time.After(time.Until(began.Add(w.from - 1500*time.Millisecond))):
			}
			current.Store(w.limit)
			time.Sleep(time.Until(began.Add(w.from)))
			w.cpuAtStart = cpuNow()
			time.Sleep(time.Until(began.Add(w.to)))
			w.sourceCPU = cpuNow().since(w.cpuAtStart).source
		}
		current.Store(0) // the rest without a limit
		must(<-done)
		return time.Since(began)
	}
	// The unlimited copy is measured whole: from its start (making the
	// collection and planning it included) to its end.
	cpu0 := cpuNow()
	took := copyOnce(0, nil)
	freeRate := float64(*rows) / took.Seconds()
	free := &window{name: "unlimited", from: 0, to: took, sourceCPU: cpuNow().since(cpu0).source}
	// A sixth of that, then a third: the copy must outlast both windows.
	l1 := max(int64(freeRate/6)/100*100, 100)
	w1 := &window{name: "limited", limit: l1, from: 4 * time.Second, to: 14 * time.Second}
	w2 := &window{name: "raised", limit: 2 * l1, from: 17 * time.Second, to: 27 * time.Second}
	copyOnce(l1, []*window{w1, w2})
	fmt.Printf("copy rate limit (options.copy_rate_limit; %d rows x %d dims, ranges of 1,000 rows, rows counted as they are checkpointed)\n", *rows, *dim)
	perSecond := func(w *window) float64 { return w.sourceCPU.Seconds() / (w.to - w.from).Seconds() }
	fmt.Printf("  %-10s  %-13s  %-13s  %-13s  %s\n", "window", "limit", "rows/s", "rows/s/limit", "source CPU (cores)")
	fmt.Printf("  %-10s  %-13s  %-13.0f  %-13s  %.2f\n", "unlimited", "-", freeRate, "-", perSecond(free))
	for _, w := range []*window{w1, w2} {
		rate := float64(w.rows) / (w.to - w.from).Seconds()
		fmt.Printf("  %-10s  %-13d  %-13.0f  %-13.3f  %.2f (%.0f %% of the unlimited copy's)\n", w.name, w.limit, rate, rate/float64(w.limit),
			perSecond(w), 100*perSecond(w)/perSecond(free))
	}
	fmt.Println("  (the unlimited copy over its whole run; each limited window starts 1.5 s after its limit was set and runs")
	fmt.Println("  10 s; goal: rows/s within 10 % of the limit)")
	fmt.Println()
}
