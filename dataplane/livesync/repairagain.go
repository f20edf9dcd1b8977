package livesync

import (
	"context"
	"fmt"

	"github.com/golang/protobuf/proto"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/milvus"
)

// maxRepaired bounds the repairs kept for the switch: a crash leaves one
// per write in flight, a handful.
const maxRepaired = 10000

// repaired keeps a repaired entry for RepairAgain.
func (a *Applier) repaired(e capture.Entry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.repairs) < maxRepaired {
		a.repairs = append(a.repairs, e)
	}
}

// RepairAgain repairs once more every uncertain write this applier
// repaired, and returns their collections. A write a dead zdmd had sent
// may still sit in the source's queue when it is repaired, and be applied
// after the repair read its keys: the repair then left the target without
// it. Called while writes are held at the switch, once the journal is
// drained, it reads the source as it stays.
func (a *Applier) RepairAgain(ctx context.Context) (map[[2]string]bool, error) {
	a.mu.Lock()
	entries := append([]capture.Entry(nil), a.repairs...)
	a.mu.Unlock()
	out := map[[2]string]bool{}
	for _, e := range entries {
		msg := milvus.RequestMessage(e.Method)
		if msg == nil {
			continue
		}
		if err := proto.Unmarshal(e.Request, msg); err != nil {
			return nil, fmt.Errorf("decode %s: %w", e.Method, err)
		}
		if err := a.repair(ctx, nil, e, msg); err != nil {
			return nil, fmt.Errorf("repair again a write of %s/%s without a known outcome: %w", e.Database, e.Collection, err)
		}
		out[[2]string{e.Database, e.Collection}] = true
	}
	if len(entries) > 0 {
		a.logger.Info("writes without a known outcome repaired again while writes are held", "writes", len(entries), "collections", len(out))
	}
	return out, nil
}
