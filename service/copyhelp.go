package service

import (
	"context"
	"sync"
	"time"

	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/handlers"
)

// copyShare shares a copy's ranges among the zdmd: claims in NATS say who
// copies a range, the migration's history what has been copied.
type copyShare struct {
	*eventstore.Claims
	service *handlers.Service
}

func (s copyShare) Migration(ctx context.Context, id string) (*domain.Migration, error) {
	return s.service.Migration(ctx, id)
}

// helpInterval is how often an instance that does not drive looks for
// ranges of a copy that nobody holds.
const helpInterval = 2 * time.Second

// helpCopies lends this zdmd to the copies another drives: while it does
// not drive, each copying migration gets a pass of copier.Help every
// helpInterval, which copies the ranges nobody holds and records each in
// the migration's history. Its claims are its own (a holder name apart
// from the driver's), so a helper still finishing a range when this
// instance starts to drive never shares that range with its driver.
func (m *Main) helpCopies(ctx context.Context, copier *rowcopy.Copier) {
	running := map[string]context.CancelFunc{}
	ended := make(chan string, 16)
	// A helper that cannot reach a cluster says so once, not every pass.
	var logMu sync.Mutex
	lastErr := map[string]string{}
	tick := time.NewTicker(helpInterval)
	defer tick.Stop()
	var helpers sync.WaitGroup
	for {
		select {
		case <-ctx.Done():
			for _, cancel := range running {
				cancel()
			}
			helpers.Wait()
			return
		case id := <-ended:
			delete(running, id)
			continue
		case <-tick.C:
		}
		if m.leading.Load() {
			for _, cancel := range running {
				cancel()
			}
			continue
		}
		for _, v := range m.migrations.List() {
			if v.State != domain.StateCopying || running[v.ID] != nil {
				continue
			}
			hctx, cancel := context.WithCancel(ctx)
			running[v.ID] = cancel
			helpers.Add(1)
			go func(id string) {
				defer helpers.Done()
				defer func() {
					cancel()
					select {
					case ended <- id:
					case <-ctx.Done():
					}
				}()
				mig, err := m.service.Migration(hctx, id)
				if err == nil && mig.State == domain.StateCopying {
					err = copier.Help(hctx, mig, func(ctx context.Context, p domain.BulkCopyProgressed) error {
						_, err := m.service.Record(ctx, id, handlers.CommandID(""), domain.RecordCopyProgress{Progress: p})
						return err
					})
				}
				if hctx.Err() != nil {
					return
				}
				logMu.Lock()
				defer logMu.Unlock()
				if err != nil && err.Error() != lastErr[id] {
					m.logger.Warn("could not help copy a migration another zdmd drives; trying again", "migration", id, "err", err)
				}
				if err != nil {
					lastErr[id] = err.Error()
				} else {
					delete(lastErr, id)
				}
			}(v.ID)
		}
	}
}
