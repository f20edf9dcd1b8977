package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
)

// sharedHistory is the migration's history as the event log keeps it for
// every zdmd: a range is recorded once, whoever copied it.
type sharedHistory struct {
	mu sync.Mutex
	m  *domain.Migration
	by map[string]int
}

func (h *sharedHistory) record(who string) func(context.Context, domain.BulkCopyProgressed) error {
	return func(_ context.Context, p domain.BulkCopyProgressed) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		events, err := domain.Decide(h.m, domain.RecordCopyProgress{Progress: p})
		for _, e := range events {
			if err == nil {
				err = h.m.Apply(domain.Record{Seq: h.m.Seq() + 1, At: time.Now(), Event: e})
				if p.Plan == nil { // a range, not a collection's plan
					h.by[who]++
				}
			}
		}
		return err
	}
}

func (h *sharedHistory) Migration(context.Context, string) (*domain.Migration, error) {
	return h.snapshot(), nil
}

func (h *sharedHistory) snapshot() *domain.Migration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m.Clone()
}

type benchShare struct {
	*eventstore.Claims
	*sharedHistory
}

// sharedCopy copies the collection with one zdmd, with two sharing its
// ranges (each with the same writers and readers, as two hosts would run
// them), and with one zdmd given as many writers and readers as the two
// together, in turns, and prints the rates and where the CPU went. On
// this machine both servers and both copiers share two cores.
func sharedCopy(ctx context.Context, dst *milvus.Conn, col *milvus.Collection, logger *slog.Logger) {
	dir, _ := os.MkdirTemp("", "zdm-sharedcopy-")
	defer os.RemoveAll(dir)
	emb, store, _ := embeddedJournal(ctx, dir)
	defer emb.Close()
	cfg := rowcopy.Config{Workers: workers, Readers: readers, PageRows: page, RangeRows: rangeRows}
	fmt.Printf("bulk copy of %d rows (%d dims) by one zdmd and by two sharing its ranges (%d writers each)\n", *rows, *dim, cfg.WithDefaults().Workers)
	doubled := cfg.WithDefaults()
	doubled.Workers, doubled.Readers = 2*doubled.Workers, 2*doubled.Readers
	for turn := range 3 {
		for _, side := range []struct {
			name    string
			copiers int
			cfg     rowcopy.Config
		}{{"1 zdmd", 1, cfg}, {"2 zdmd", 2, cfg}, {"1 zdmd, 2x writers", 1, doubled}} {
			copiers := side.copiers
			must(dst.DropEverything(ctx))
			settle()
			planner := rowcopy.NewCopier(endpoints{"src": *source, "dst": *target}, side.cfg, logger)
			plan, err := planner.Plan(ctx, migrationFor(domain.CopyStarted{}))
			must(err)
			h := &sharedHistory{m: migrationFor(plan), by: map[string]int{}}
			share := func(c *rowcopy.Copier, holder string) {
				claims, err := store.Claims(ctx, fmt.Sprintf("%s-%d-%s", holder, turn, side.name), 2*time.Second, logger)
				must(err)
				c.Share(benchShare{claims, h})
			}
			share(planner, "driver")
			clock := startClock()
			hctx, stopHelping := context.WithCancel(ctx)
			var helping sync.WaitGroup
			if copiers == 2 {
				helper := rowcopy.NewCopier(endpoints{"src": *source, "dst": *target}, cfg, logger)
				share(helper, "helper")
				helping.Add(1)
				go func() {
					defer helping.Done()
					for hctx.Err() == nil {
						_ = helper.Help(hctx, h.snapshot(), h.record("helper"))
						time.Sleep(50 * time.Millisecond)
					}
				}()
			}
			must(planner.Copy(ctx, h.snapshot(), h.record("driver")))
			rate, cpu := clock.stop(*rows)
			stopHelping()
			helping.Wait()
			n, err := dst.CountWhere(ctx, col.Database, col.Name, "")
			must(err)
			if n != *rows {
				log.Fatalf("%d zdmd copied %d rows, want %d", copiers, n, *rows)
			}
			total := cpu.self + cpu.source + cpu.target
			fmt.Printf("  turn %d, %-18s %7.0f rows/s; ranges by the driver %2d, by the helper %2d; CPU per row us zdm %.1f, source %.1f, target %.1f (%.1f in all: %.0f rows/s is what 2 cores allow)\n",
				turn+1, side.name+":", rate, h.by["driver"], h.by["helper"], cpu.self, cpu.source, cpu.target, total, 2e6/total)
		}
	}
	fmt.Println()
}
