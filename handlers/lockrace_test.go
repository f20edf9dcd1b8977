package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/zdm-io/zdm/dataplane/simulated"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/handlers"
)

// The start's request and the saga both lock a requested migration's
// source. When the source is busy, the one that records the failure
// second must still answer source_busy: it answered "invalid transition:
// failed is not allowed in state failed" (a CI run of
// TestStartsAtTheSameMomentLeaveNoMigrationUnnamed).
func TestLockingABusySourceTwiceAtOnceAnswersBusyBothTimes(t *testing.T) {
	h := newHarness(t, handlers.StepsOf(domain.ProvisionerSimulated, simulated.New(simulated.Config{})))
	ctx := context.Background()
	holder, err := h.svc.Migration(ctx, h.start(t, domain.ProvisionerSimulated, ""))
	if err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		id := fmt.Sprintf("m-raced%02d", round)
		if _, err := h.svc.Record(ctx, id, id+"/request", domain.RequestMigration{
			ID: id, Actor: "root", Source: holder.Source,
			Target: domain.TargetSpec{Name: "next", Project: "p", Provisioner: domain.ProvisionerSimulated},
		}); err != nil {
			t.Fatal(err)
		}
		const lockers = 4
		errs := make([]error, lockers)
		var wg sync.WaitGroup
		for i := range lockers {
			wg.Go(func() { _, errs[i] = h.svc.LockSource(ctx, id) })
		}
		wg.Wait()
		for i, err := range errs {
			// A locker that read the migration after the failure was
			// recorded has nothing to do and says so with no error.
			if err != nil && !errors.Is(err, domain.ErrSourceBusy) {
				t.Fatalf("round %d, locker %d: %v, want source_busy", round, i, err)
			}
		}
		m, err := h.svc.Migration(ctx, id)
		if err != nil || m.State != domain.StateFailed {
			t.Fatalf("round %d: %+v %v, want failed", round, m, err)
		}
	}
}
