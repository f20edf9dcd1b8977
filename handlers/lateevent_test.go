package handlers_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/simulated"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/handlers"
)

// heldSwitch counts the switches and holds each until release closes.
type heldSwitch struct {
	handlers.Syncer
	started chan struct{}
	release chan struct{}
	calls   atomic.Int32
}

func (s *heldSwitch) Switch(ctx context.Context, m *domain.Migration) (domain.SwitchedOver, domain.Verified, func(bool), error) {
	s.calls.Add(1)
	s.started <- struct{}{}
	select {
	case <-s.release:
	case <-ctx.Done():
		return domain.SwitchedOver{}, domain.Verified{}, nil, ctx.Err()
	}
	return s.Syncer.Switch(ctx, m)
}

// The sync step ends on the recorded stop when its event comes late;
// the event, once it comes, must not interrupt the switch that followed:
// the switch ran twice, its writes held twice (a CI run of
// TestRestartAfterKillResumesWithoutRepeatingSteps).
func TestALateEventDoesNotInterruptTheStepAfterTheOneItEnds(t *testing.T) {
	steps := handlers.StepsOf(domain.ProvisionerSimulated, simulated.New(simulated.Config{LagStart: 1, LagStep: 10 * time.Millisecond}))
	sw := &heldSwitch{Syncer: steps.Syncer, started: make(chan struct{}, 4), release: make(chan struct{})}
	steps.Syncer = sw
	h := newHarness(t, steps)
	saga, id := h.stoppedWithoutItsEvent(t)
	select {
	case <-sw.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the switch did not start on the recorded stop")
	}
	// The stop's event reaches the saga now, while the switch runs.
	subject := domain.MigrationSubject + id
	recs, _, err := h.store.Load(context.Background(), subject, 0)
	if err != nil {
		t.Fatal(err)
	}
	late := 0
	for _, rec := range recs {
		if _, ok := rec.Event.(domain.SyncStopped); ok {
			if err := saga.Handle(context.Background(), subject, []domain.Record{rec}); err != nil {
				t.Fatal(err)
			}
			late++
		}
	}
	if late != 1 {
		t.Fatalf("%d sync_stopped events in the history, want 1", late)
	}
	time.Sleep(50 * time.Millisecond) // an interrupted switch would be running again by now
	close(sw.release)
	h.wait(t, id, domain.StateSwitchedOver)
	if n := sw.calls.Load(); n != 1 {
		t.Fatalf("the switch ran %d times, want 1", n)
	}
}
