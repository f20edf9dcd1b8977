package handlers_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/zdm-io/zdm/dataplane/simulated"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/handlers"
)

// A step that fails for a reason of its own, and no longer after the
// saga's retries, fails its migration with the reason of the state it was
// in and the step's error as the detail: the operator's guide has a row
// for each.
func TestEveryStepsFailureHasItsReason(t *testing.T) {
	boom := errors.New("boom: connection refused")
	for _, tc := range []struct {
		reason string
		steps  func(dp *simulated.DataPlane, s *handlers.Steps)
		stop   bool // the operator stops the sync, so that the switch runs
	}{
		{"provisioning_failed", func(dp *simulated.DataPlane, s *handlers.Steps) {
			s.Provisioners = map[string]handlers.Provisioner{domain.ProvisionerSimulated: failingProvisioner{dp, boom}}
		}, false},
		{"inventory_failed", func(dp *simulated.DataPlane, s *handlers.Steps) {
			s.Copier = copierFunc{plan: func(context.Context, *domain.Migration) (domain.CopyStarted, error) {
				return domain.CopyStarted{}, boom
			}, copy: dp.Copy}
		}, false},
		{"sync_failed", func(dp *simulated.DataPlane, s *handlers.Steps) {
			s.Syncer = failingSyncer{DataPlane: dp, sync: boom}
		}, false},
		{"switch_failed", func(dp *simulated.DataPlane, s *handlers.Steps) {
			s.Syncer = failingSyncer{DataPlane: dp, swtch: boom}
		}, true},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			dp := simulated.New(simulated.Config{})
			steps := handlers.StepsOf(domain.ProvisionerSimulated, dp)
			tc.steps(dp, &steps)
			h := newHarness(t, steps)
			h.runSaga(t)
			id := h.start(t, domain.ProvisionerSimulated, "")
			if tc.stop {
				stopSync(t, h, id)
			}
			m := h.wait(t, id, domain.StateFailed)
			if m.FailureReason != tc.reason || m.FailureDetail != boom.Error() {
				t.Fatalf("failed with %q / %q, want %q / %q", m.FailureReason, m.FailureDetail, tc.reason, boom)
			}
			h.waitUnlocked(t, m.Source.ID)
		})
	}
}

// A source deleted from the registry between a migration's request and
// its lock fails the migration source_deleted.
func TestASourceDeletedBeforeItsLockFailsTheMigration(t *testing.T) {
	h := newHarness(t, handlers.StepsOf(domain.ProvisionerSimulated, simulated.New(simulated.Config{})))
	ctx := context.Background()
	c, err := h.svc.RegisterCluster(ctx, admin, "reg", handlers.RegisterCluster{Name: "prod", Organization: "acme", Project: "p", Endpoint: "h:1"})
	if err != nil {
		t.Fatal(err)
	}
	const id = "m-gone"
	if _, err := h.svc.Record(ctx, id, id+"/request", domain.RequestMigration{ID: id, Actor: "root",
		Source: domain.ClusterRef{ID: c.ID, Name: c.Name, Organization: c.Organization, Project: c.Project, Endpoint: c.Endpoint},
		Target: domain.TargetSpec{Name: "next", Project: "p", Provisioner: domain.ProvisionerSimulated}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.DeleteCluster(ctx, admin, "del", c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.LockSource(ctx, id); !errors.Is(err, domain.ErrClusterDeleted) {
		t.Fatalf("locking a deleted source: %v, want %v", err, domain.ErrClusterDeleted)
	}
	m, err := h.svc.Migration(ctx, id)
	if err != nil || m.State != domain.StateFailed || m.FailureReason != handlers.ReasonSourceDeleted {
		t.Fatalf("%+v %v, want failed %s", m, err, handlers.ReasonSourceDeleted)
	}
}

type failingProvisioner struct {
	*simulated.DataPlane
	err error
}

func (f failingProvisioner) Provision(context.Context, *domain.Migration) (domain.Target, error) {
	return domain.Target{}, f.err
}

// failingSyncer's Sync, or Switch, fails with its error.
type failingSyncer struct {
	*simulated.DataPlane
	sync, swtch error
}

func (f failingSyncer) Sync(ctx context.Context, m *domain.Migration, lag func(context.Context, float64) error) error {
	if f.sync != nil {
		return f.sync
	}
	return f.DataPlane.Sync(ctx, m, lag)
}

func (f failingSyncer) Switch(ctx context.Context, m *domain.Migration) (domain.SwitchedOver, domain.Verified, func(bool), error) {
	if f.swtch != nil {
		return domain.SwitchedOver{}, domain.Verified{}, nil, f.swtch
	}
	return f.DataPlane.Switch(ctx, m)
}

// refusingLocks is an event log that refuses to record a cluster's lock.
type refusingLocks struct {
	handlers.EventLog
	err error
}

func (r refusingLocks) Append(ctx context.Context, subject string, expected uint64, b domain.Batch) (uint64, error) {
	for _, e := range b.Events {
		if _, ok := e.(domain.ClusterLocked); ok {
			return 0, r.err
		}
	}
	return r.EventLog.Append(ctx, subject, expected, b)
}

// A source whose lock cannot be recorded, for a reason other than a busy
// or deleted source, fails the migration lock_failed once the saga's
// retries are spent, with the store's error as the detail.
func TestALockThatCannotBeRecordedFailsTheMigration(t *testing.T) {
	h := newHarness(t, handlers.StepsOf(domain.ProvisionerSimulated, simulated.New(simulated.Config{})))
	refused := errors.New("the cluster's stream is sealed")
	h.svc = handlers.NewService(handlers.ServiceConfig{Log: refusingLocks{h.store, refused}, Clock: h.clock})
	ctx := context.Background()
	c, err := h.svc.RegisterCluster(ctx, admin, "reg", handlers.RegisterCluster{Name: "prod", Organization: "acme", Project: "p", Endpoint: "h:1"})
	if err != nil {
		t.Fatal(err)
	}
	started, err := h.svc.StartMigration(ctx, admin, "start", handlers.StartMigration{
		SourceClusterID: c.ID, Target: domain.TargetSpec{Name: "next", Project: "p", Provisioner: domain.ProvisionerSimulated}})
	if !errors.Is(err, refused) || started == nil {
		t.Fatalf("the start: %+v, %v; want the requested migration and the store's refusal", started, err)
	}
	h.runSaga(t)
	m := h.wait(t, started.ID, domain.StateFailed)
	if m.FailureReason != "lock_failed" || !strings.Contains(m.FailureDetail, refused.Error()) {
		t.Fatalf("failed with %q / %q, want lock_failed naming the store's error", m.FailureReason, m.FailureDetail)
	}
}
