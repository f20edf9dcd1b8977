package handlers_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/simulated"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/handlers"
)

// endedSet is a handlers.EndedMigrations in memory.
type endedSet struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (e *endedSet) EndedIDs(context.Context) (map[string]bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]bool{}
	for id := range e.ids {
		out[id] = true
	}
	return out, nil
}

func (e *endedSet) MarkEnded(_ context.Context, m *domain.Migration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ids[m.ID] = true
	return nil
}

func (e *endedSet) has(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ids[id]
}

// disarms counts the finishes of each migration: the saga's finish
// disarms its capture first.
type disarms struct {
	*simulated.DataPlane
	mu sync.Mutex
	n  map[string]int
}

func (d *disarms) Disarm(ctx context.Context, m *domain.Migration) error {
	d.mu.Lock()
	d.n[m.ID]++
	d.mu.Unlock()
	return d.DataPlane.Disarm(ctx, m)
}

func (d *disarms) of(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n[id]
}

// A term's start used to load every migration ever run and finish each
// ended one again (in zdmd: loads, cluster commands, journal purges), so
// every takeover took longer as the history grew. A migration the saga
// finished is marked, and the next term leaves it alone; one not marked
// (its mark lost, or a zdmd that died before marking it) is finished as
// before.
func TestATermLeavesAloneTheMigrationsFinishedBefore(t *testing.T) {
	dp := simulated.New(simulated.Config{LagStart: 1000, LagStep: time.Hour, StepLog: t.TempDir() + "/steps"})
	count := &disarms{DataPlane: dp, n: map[string]int{}}
	h := newHarness(t, handlers.StepsOf(domain.ProvisionerSimulated, dp))
	h.steps.Syncer = count
	ended := &endedSet{ids: map[string]bool{}}
	ctx := context.Background()

	stop := h.runSagaOf(t, h.svc, handlers.SagaConfig{Ended: ended}, "saga")
	var ids []string
	for i := range 3 {
		id := h.start(t, domain.ProvisionerSimulated, "1h")
		h.wait(t, id, domain.StateSyncing)
		if _, err := h.svc.CancelMigration(ctx, admin, fmt.Sprintf("cancel-%d", i), id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		h.wait(t, id, domain.StateCancelled)
		waitUntil(t, func() bool { return ended.has(id) }, "migration %s marked ended", id)
		if n := count.of(id); n != 1 {
			t.Fatalf("migration %s finished %d times in the term it ended in", id, n)
		}
	}
	stop()

	// The mark of the last one is lost: it alone is finished again.
	lost := ids[2]
	ended.mu.Lock()
	delete(ended.ids, lost)
	ended.mu.Unlock()
	running := h.start(t, domain.ProvisionerSimulated, "1h")
	h.runSagaOf(t, h.svc, handlers.SagaConfig{Ended: ended}, "saga")
	h.wait(t, running, domain.StateSyncing)
	waitUntil(t, func() bool { return count.of(lost) == 2 }, "the migration whose mark was lost finished again")
	waitUntil(t, func() bool { return ended.has(lost) }, "the migration whose mark was lost marked again")
	for _, id := range ids[:2] {
		if n := count.of(id); n != 1 {
			t.Fatalf("migration %s, marked ended, was finished again by the next term: %d finishes", id, n)
		}
	}
	if ended.has(running) {
		t.Fatalf("running migration %s marked ended", running)
	}
}

func waitUntil(t *testing.T, ok func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: "+format, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
