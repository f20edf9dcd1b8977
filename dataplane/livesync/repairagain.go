package livesync

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/golang/protobuf/proto"
	"golang.org/x/sync/errgroup"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/milvus"
)

// Every uncertain write repaired is kept beside the apply positions, by
// its journal sequence, so that whichever zdmd runs the switch repairs it
// again: the one that repaired it may be dead by then, and the journal
// has been trimmed past it.

// repairAgainParallel bounds the repairs made at once at the switch.
const repairAgainParallel = 16

// repairedPrefix starts the keys of a migration's kept repairs.
func repairedPrefix(migrationID string) string {
	return capture.JournalPrefix(migrationID) + "repaired."
}

// keepRepair records the repaired entry data (at journal sequence seq)
// for RepairAgain.
func (a *Applier) keepRepair(ctx context.Context, seq uint64, data []byte) error {
	key := repairedPrefix(a.id) + strconv.FormatUint(seq, 10)
	if err := a.positions.Put(ctx, key, data); err != nil {
		return fmt.Errorf("keep the repair of journal entry %d for the switch: %w", seq, err)
	}
	return nil
}

// RepairAgain repairs once more every uncertain write of the migration
// that was repaired, by this zdmd or another, and returns their
// collections. A write a dead zdmd had sent may still sit in the source's
// queue when it is repaired, and be applied after the repair read its
// keys: the repair then left the target without it. Called while writes
// are held at the switch, once the journal is drained, it reads the source
// as it stays.
func (a *Applier) RepairAgain(ctx context.Context) (map[[2]string]bool, error) {
	began := time.Now()
	kept, err := a.positions.Matching(ctx, repairedPrefix(a.id)+"*")
	if err != nil {
		return nil, fmt.Errorf("read the repaired writes: %w", err)
	}
	// In parallel: each repair's strong read of the source waits for its
	// next time tick, and writes are held meanwhile.
	var mu sync.Mutex
	out := map[[2]string]bool{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(repairAgainParallel)
	for key, data := range kept {
		g.Go(func() error {
			e, err := capture.UnmarshalEntry(data)
			if err != nil {
				return fmt.Errorf("repaired write %s: %w", key, err)
			}
			msg := milvus.RequestMessage(e.Method)
			if msg == nil {
				return nil
			}
			if err := proto.Unmarshal(e.Request, msg); err != nil {
				return fmt.Errorf("decode %s: %w", e.Method, err)
			}
			if err := a.repair(gctx, nil, e, msg); err != nil {
				return fmt.Errorf("repair again a write of %s/%s without a known outcome: %w", e.Database, e.Collection, err)
			}
			mu.Lock()
			out[[2]string{e.Database, e.Collection}] = true
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if len(kept) > 0 {
		a.logger.Info("writes without a known outcome repaired again while writes are held", "writes", len(kept), "collections", len(out),
			"took", time.Since(began).Round(time.Millisecond))
	}
	return out, nil
}
