// Package porttest holds the acceptance suites of the ports the saga
// drives: what any provisioner and any data plane must do, whatever it is
// built on. Each implementation's tests run the same suite, in the manner
// of an event store's acceptance tests, so a new implementation is held to
// the contract the saga relies on.
package porttest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/handlers"
)

// Provisioner checks a provisioner with a migration of its own: Provision
// yields a target with an endpoint; a retried Provision yields the same
// one; empty (when set) checks that the target holds nothing; Release
// ends it, and a second Release, or one for a migration never
// provisioned, is harmless.
func Provisioner(t *testing.T, p handlers.Provisioner, m *domain.Migration, empty func(t *testing.T, tg domain.Target)) {
	t.Helper()
	ctx := context.Background()
	first, err := p.Provision(ctx, m)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	released := false
	t.Cleanup(func() {
		if !released {
			_ = p.Release(context.Background(), m)
		}
	})
	if first.ClusterID == "" || first.Endpoint == "" {
		t.Fatalf("a target without a cluster or an endpoint: %+v", first)
	}
	again, err := p.Provision(ctx, m)
	if err != nil {
		t.Fatalf("a retried provision: %v", err)
	}
	if again.ClusterID != first.ClusterID || again.Endpoint != first.Endpoint {
		t.Fatalf("a retried provision gave another target: %+v, then %+v", first, again)
	}
	if empty != nil {
		empty(t, first)
	}
	if err := p.Release(ctx, m); err != nil {
		t.Fatalf("release: %v", err)
	}
	released = true
	if err := p.Release(ctx, m); err != nil {
		t.Fatalf("a second release: %v", err)
	}
	other := m.Clone()
	other.ID = m.ID + "-never"
	if err := p.Release(ctx, other); err != nil {
		t.Fatalf("the release of a migration never provisioned: %v", err)
	}
}

// history folds events into a migration as the log would. A data plane
// may checkpoint from several goroutines at once, as the saga allows.
type history struct {
	t  *testing.T
	mu sync.Mutex
	m  *domain.Migration
}

func (h *history) record(events ...domain.Event) {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range events {
		if err := h.m.Apply(domain.Record{Seq: h.m.Seq() + 1, At: time.Now(), Actor: "porttest", Event: e}); err != nil {
			h.t.Fatalf("record %s: %v", e.EventType(), err)
		}
	}
}

// Current is the migration as the suite has recorded it so far; a data
// plane that reads the migration back (the Milvus sync does) reads this.
type Current struct{ h *history }

// Migration returns a copy of the migration as recorded so far.
func (c *Current) Migration(context.Context, string) (*domain.Migration, error) {
	return c.h.clone(), nil
}

func (h *history) clone() *domain.Migration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m.Clone()
}

// DataPlane checks a data plane's copy, sync and switch, in the order the
// saga runs them, on a migration whose target is provisioned (source and
// target as the data plane resolves them). A plan lists the collections
// the source has; every planned range is checkpointed exactly once and
// every collection ends done; a copy resumed after it finished copies
// nothing; verification after the copy finds the clusters equal; the sync
// reports a lag that is never negative; the switch names the target and
// its check finds the clusters equal; arming again and disarming are
// harmless. current, when set, is filled with the migration as recorded,
// for a data plane that reads it back.
func DataPlane(t *testing.T, steps handlers.Steps, source domain.ClusterRef, target domain.TargetProvisioned, current *Current) {
	t.Helper()
	ctx := context.Background()
	h := &history{t: t, m: domain.NewMigration()}
	if current != nil {
		current.h = h
	}
	h.record(domain.MigrationRequested{ID: "m-porttest", Source: source, Options: domain.Options{}.WithDefaults(), Organization: source.Organization},
		domain.Locked{SourceClusterID: source.ID}, domain.ProvisioningStarted{Provisioner: "porttest"}, target)
	if err := steps.Syncer.Arm(ctx, h.clone()); err != nil {
		t.Fatalf("arm: %v", err)
	}
	t.Cleanup(func() { _ = steps.Syncer.Disarm(context.Background(), h.clone()) })

	plan, err := steps.Copier.Plan(ctx, h.clone())
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if len(plan.Collections) == 0 {
		t.Fatal("the plan lists no collection")
	}
	h.record(plan)
	checkpoints := map[string]int{}
	copyAll := func() int {
		n := 0
		var mu sync.Mutex
		err := steps.Copier.Copy(ctx, h.clone(), func(_ context.Context, p domain.BulkCopyProgressed) error {
			mu.Lock()
			checkpoints[p.Database+"/"+p.Collection+"/"+p.Range]++
			n++
			mu.Unlock()
			h.record(p)
			return nil
		})
		if err != nil {
			t.Fatalf("copy: %v", err)
		}
		return n
	}
	if copyAll() == 0 {
		t.Fatal("the copy made no checkpoint")
	}
	for key, n := range checkpoints {
		if n != 1 {
			t.Fatalf("range %s checkpointed %d times", key, n)
		}
	}
	for _, c := range h.m.Collections {
		if !c.Done {
			t.Fatalf("collection %s/%s is not done after the copy", c.Database, c.Collection)
		}
		for _, r := range c.Planned {
			if checkpoints[c.Database+"/"+c.Collection+"/"+r] != 1 {
				t.Fatalf("planned range %s of %s/%s was not checkpointed", r, c.Database, c.Collection)
			}
		}
	}
	if n := copyAll(); n != 0 {
		t.Fatalf("a copy resumed after it finished made %d checkpoints", n)
	}
	if steps.Verifier != nil {
		v, err := steps.Verifier.Verify(ctx, h.clone(), "copy")
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		if !v.Equal || v.Phase != "copy" {
			t.Fatalf("verification after the copy: %+v", v)
		}
	}
	h.record(domain.BulkCopied{Rows: h.m.CopiedRows})

	syncCtx, stop := context.WithTimeout(ctx, 3*time.Second)
	defer stop()
	samples := 0
	if err := steps.Syncer.Sync(syncCtx, h.clone(), func(_ context.Context, seconds float64) error {
		if seconds < 0 {
			t.Errorf("a negative lag: %v", seconds)
		}
		samples++
		return nil
	}); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if samples == 0 {
		t.Fatal("the sync reported no lag in 3 s")
	}
	h.record(domain.SyncStopped{ConfirmedBy: "porttest", LagSeconds: 0})
	if err := steps.Syncer.Arm(ctx, h.clone()); err != nil {
		t.Fatalf("arming again: %v", err)
	}
	sw, check, route, err := steps.Syncer.Switch(ctx, h.clone())
	if err != nil {
		t.Fatalf("switch: %v", err)
	}
	if route == nil {
		t.Fatal("a switch without a route to release the held writes")
	}
	if sw.TargetEndpoint == "" || !check.Equal || check.Phase != "switch" {
		t.Fatalf("switch: %+v, check %+v", sw, check)
	}
	h.record(domain.Verified{Phase: "switch", Equal: true}, sw)
	route(true)
	if err := steps.Syncer.Disarm(ctx, h.clone()); err != nil {
		t.Fatalf("disarm: %v", err)
	}
}
