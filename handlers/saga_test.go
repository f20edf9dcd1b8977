package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/simulated"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
	"github.com/zdm-io/zdm/handlers"
	"github.com/zdm-io/zdm/retry"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var admin = domain.Principal{User: "root", Role: domain.RoleAdmin}

type harness struct {
	store  *eventstore.Store
	svc    *handlers.Service
	clock  *fakeClock
	steps  handlers.Steps
	starts int // numbers each start's command IDs
}

func newHarness(t *testing.T, steps handlers.Steps) *harness {
	store := estest.NewStore(t)
	clock := &fakeClock{now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	svc := handlers.NewService(handlers.ServiceConfig{Log: store, Clock: clock})
	return &harness{store: store, svc: svc, clock: clock, steps: steps}
}

// runSaga runs a saga and its reactor until the returned stop is called.
func (h *harness) runSaga(t *testing.T) (stop func()) {
	t.Helper()
	return h.runSagaOf(t, h.svc, handlers.SagaConfig{}, "saga")
}

// runSagaOf runs a saga on svc with cfg's lease term and a reactor of its
// own (durable), as one of several zdmd would.
func (h *harness) runSagaOf(t *testing.T, svc *handlers.Service, cfg handlers.SagaConfig, durable string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg.LagRecordInterval, cfg.Tick, cfg.Retry = 10*time.Millisecond, 5*time.Millisecond, retry.Policy{Attempts: 3, First: time.Millisecond}
	saga := handlers.NewSaga(svc, h.steps, h.store, nil, cfg)
	if err := saga.Start(ctx); err != nil {
		t.Fatal(err)
	}
	sub, _, err := h.store.Consume(ctx, eventstore.ConsumeConfig{Durable: durable, Filter: domain.MigrationSubject + ">"}, saga.Handle)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			sub.Stop()
			saga.Wait()
		}
	}
	t.Cleanup(stop)
	return stop
}

func (h *harness) start(t *testing.T, provisioner, limit string) string {
	t.Helper()
	h.starts++
	c, err := h.svc.RegisterCluster(context.Background(), admin, fmt.Sprintf("reg-%d", h.starts), handlers.RegisterCluster{Name: "prod", Organization: "acme", Project: "p", Endpoint: "h:1"})
	if err != nil {
		t.Fatal(err)
	}
	var d domain.Duration
	_ = d.UnmarshalText([]byte(limit))
	m, err := h.svc.StartMigration(context.Background(), admin, fmt.Sprintf("start-%d", h.starts), handlers.StartMigration{
		SourceClusterID: c.ID, Target: domain.TargetSpec{Name: "next", Project: "p", Provisioner: provisioner},
		Options: domain.Options{SyncTimeLimit: d},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m.ID
}

func (h *harness) wait(t *testing.T, id string, state domain.State) *domain.Migration {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := h.svc.Migration(context.Background(), id)
		if err == nil && m.State == state {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("migration did not reach %s: %+v %v", state, m, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSyncTimeLimitHoldsAcrossRestart(t *testing.T) {
	dp := simulated.New(simulated.Config{LagStart: 1000, LagStep: time.Hour, StepLog: t.TempDir() + "/steps"})
	h := newHarness(t, handlers.StepsOf(domain.ProvisionerSimulated, dp))
	stop := h.runSaga(t)
	id := h.start(t, domain.ProvisionerSimulated, "1h")
	h.wait(t, id, domain.StateSyncing)
	stop()

	// While zdmd is down the limit passes; the restarted saga enforces it
	// from the recorded sync start, not from a timer it had in memory.
	h.clock.Advance(2 * time.Hour)
	h.runSaga(t)
	m := h.wait(t, id, domain.StateFailed)
	if m.FailureReason != domain.ReasonSyncTimeLimit {
		t.Fatalf("reason %q", m.FailureReason)
	}
	// The resources are released: the source unlocked, the target gone.
	h.waitUnlocked(t, m.Source.ID)
	if _, err := h.svc.Cluster(context.Background(), m.TargetCluster.ClusterID); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("target not released: %v", err)
	}
}

// waitUnlocked waits for a source to be back in service. A lock is the
// last thing a failed migration hands back.
func (h *harness) waitUnlocked(t *testing.T, clusterID string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		src, _ := h.svc.Cluster(context.Background(), clusterID)
		if src != nil && src.Status() == domain.StatusRunning {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("source not released: %+v", src)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSyncWithinLimitIsNotFailed(t *testing.T) {
	dp := simulated.New(simulated.Config{LagStart: 1000, LagStep: time.Hour})
	h := newHarness(t, handlers.StepsOf(domain.ProvisionerSimulated, dp))
	h.runSaga(t)
	id := h.start(t, domain.ProvisionerSimulated, "1h")
	h.wait(t, id, domain.StateSyncing)
	h.clock.Advance(59 * time.Minute)
	time.Sleep(100 * time.Millisecond)
	if m, _ := h.svc.Migration(context.Background(), id); m.State != domain.StateSyncing {
		t.Fatalf("failed before its limit: %s %s", m.State, m.FailureReason)
	}
}

type failingCopier struct {
	simulated.DataPlane
	calls int
	mu    sync.Mutex
}

func (f *failingCopier) Copy(context.Context, *domain.Migration, func(context.Context, domain.BulkCopyProgressed) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return errors.New("target unreachable: connection refused")
}

type refusingProvisioner struct{}

func (refusingProvisioner) Provision(context.Context, *domain.Migration) (domain.Target, error) {
	return domain.Target{}, &domain.StepError{Reason: "target_not_empty", Permanent: true, Err: errors.New("spare cluster spare-1 holds 3 collections")}
}
func (refusingProvisioner) Release(context.Context, *domain.Migration) error { return nil }

func TestFailingStepsEndWithAReason(t *testing.T) {
	t.Run("transient error beyond the retries", func(t *testing.T) {
		dp := simulated.New(simulated.Config{})
		steps := handlers.StepsOf(domain.ProvisionerSimulated, dp)
		fc := &failingCopier{}
		steps.Copier = struct {
			handlers.Copier
		}{copierFunc{plan: dp.Plan, copy: fc.Copy}}
		h := newHarness(t, steps)
		h.runSaga(t)
		m := h.wait(t, h.start(t, domain.ProvisionerSimulated, ""), domain.StateFailed)
		if m.FailureReason != "copy_failed" || m.FailureDetail != "target unreachable: connection refused" {
			t.Fatalf("got %q / %q", m.FailureReason, m.FailureDetail)
		}
		if fc.calls != 3 {
			t.Fatalf("copy tried %d times, want 3", fc.calls)
		}
	})
	t.Run("permanent refusal", func(t *testing.T) {
		steps := handlers.StepsOf(domain.ProvisionerSimulated, simulated.New(simulated.Config{}))
		steps.Provisioners = map[string]handlers.Provisioner{domain.ProvisionerPool: refusingProvisioner{}}
		h := newHarness(t, steps)
		h.runSaga(t)
		// The saga fails this migration within milliseconds, often before
		// the API has recorded its own lock: the start must still answer,
		// and no lock may outlive the migration.
		for i := 0; i < 20; i++ {
			m := h.wait(t, h.start(t, domain.ProvisionerPool, ""), domain.StateFailed)
			if m.FailureReason != "target_not_empty" {
				t.Fatalf("reason %q", m.FailureReason)
			}
			h.waitUnlocked(t, m.Source.ID)
		}
	})
	t.Run("provisioner not configured", func(t *testing.T) {
		h := newHarness(t, handlers.StepsOf(domain.ProvisionerSimulated, simulated.New(simulated.Config{})))
		h.runSaga(t)
		m := h.wait(t, h.start(t, domain.ProvisionerLocal, ""), domain.StateFailed)
		if m.FailureReason != "provisioner_unavailable" {
			t.Fatalf("reason %q", m.FailureReason)
		}
	})
}

type copierFunc struct {
	plan func(context.Context, *domain.Migration) (domain.CopyStarted, error)
	copy func(context.Context, *domain.Migration, func(context.Context, domain.BulkCopyProgressed) error) error
}

func (c copierFunc) Plan(ctx context.Context, m *domain.Migration) (domain.CopyStarted, error) {
	return c.plan(ctx, m)
}
func (c copierFunc) Copy(ctx context.Context, m *domain.Migration, cp func(context.Context, domain.BulkCopyProgressed) error) error {
	return c.copy(ctx, m, cp)
}

// stopSync stops migration id's sync, forced, once it is syncing.
func stopSync(t *testing.T, h *harness, id string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, err := h.svc.StopSync(context.Background(), admin, "stop-1", id, handlers.StopSync{ConfirmWritesStopped: true, Force: true})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
}

// routeSpy is a syncer that notes, when the saga releases the held writes,
// where they go and what the history said at that moment.
type routeSpy struct {
	*simulated.DataPlane
	svc *handlers.Service
	mu  sync.Mutex
	got []string
}

func (r *routeSpy) Switch(ctx context.Context, m *domain.Migration) (domain.SwitchedOver, domain.Verified, func(bool), error) {
	sw, check, _, err := r.DataPlane.Switch(ctx, m)
	return sw, check, func(toTarget bool) {
		cur, lerr := r.svc.Migration(context.Background(), m.ID)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, fmt.Sprintf("to target %v, history %s %v", toTarget, cur.State, lerr))
	}, err
}

// The held writes go on to the target only once the switch is in the
// history: a zdmd that died between the two would otherwise have sent
// writes to the target that its restart sends to the source.
func TestTheSwitchIsRecordedBeforeAnyHeldWriteGoesToTheTarget(t *testing.T) {
	dp := simulated.New(simulated.Config{LagStep: time.Millisecond})
	steps := handlers.StepsOf(domain.ProvisionerSimulated, dp)
	h := newHarness(t, steps)
	spy := &routeSpy{DataPlane: dp, svc: h.svc}
	h.steps.Syncer = spy
	h.runSaga(t)
	id := h.start(t, domain.ProvisionerSimulated, "1h")
	h.wait(t, id, domain.StateSyncing)
	stopSync(t, h, id)
	h.wait(t, id, domain.StateSwitchedOver)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		spy.mu.Lock()
		got := append([]string(nil), spy.got...)
		spy.mu.Unlock()
		if len(got) > 0 {
			if len(got) != 1 || got[0] != "to target true, history switched_over <nil>" {
				t.Fatalf("held writes released: %v", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the held writes were never released")
		}
	}
}

// A saga of a newer lease term takes a migration over mid-copy; the saga
// of the older term, still running (a frozen zdmd that woke up), is
// fenced off: whatever it tries to record is refused, and the migration
// ends as if one saga had driven it.
func TestAStaleSagaCannotRecordOnceANewerTermDrives(t *testing.T) {
	dp := simulated.New(simulated.Config{RangesPerCollection: 10, RangeDelay: 20 * time.Millisecond, LagStart: 1, LagStep: time.Millisecond})
	h := newHarness(t, handlers.StepsOf(domain.ProvisionerSimulated, dp))
	h.runSagaOf(t, h.svc, handlers.SagaConfig{Instance: "zdmd-1", Term: 5}, "saga-1")
	id := h.start(t, domain.ProvisionerSimulated, "")
	h.wait(t, id, domain.StateCopying)

	other := handlers.NewService(handlers.ServiceConfig{Log: h.store, Clock: h.clock})
	h.runSagaOf(t, other, handlers.SagaConfig{Instance: "zdmd-2", Term: 7}, "saga-2")
	m := h.wait(t, id, domain.StateSyncing)
	if m.Driver != (domain.DriverChanged{Instance: "zdmd-2", Term: 7}) {
		t.Fatalf("driver = %+v, want zdmd-2 term 7", m.Driver)
	}
	stale := handlers.WithDriver(context.Background(), "zdmd-1", 5)
	if _, err := h.svc.Record(stale, id, "stale-sample", domain.SampleLag{LagSeconds: 1, Now: h.clock.Now()}); !errors.Is(err, domain.ErrFenced) {
		t.Fatalf("a stale term's record: %v, want ErrFenced", err)
	}
	if _, err := other.Record(handlers.WithDriver(context.Background(), "zdmd-1", 5), id, "stale-take", domain.TakeDriving{Instance: "zdmd-1", Term: 5}); !errors.Is(err, domain.ErrFenced) {
		t.Fatalf("a stale term taking it back: %v, want ErrFenced", err)
	}
	if _, err := h.svc.StopSync(context.Background(), admin, "stop", id, handlers.StopSync{ConfirmWritesStopped: true, Force: true}); err != nil {
		t.Fatal(err)
	}
	m = h.wait(t, id, domain.StateSwitchedOver)
	if m.CopiedRows != m.Collections[0].Total*int64(len(m.Collections)) {
		t.Fatalf("copied %d rows of %d collections", m.CopiedRows, len(m.Collections))
	}
}

// failingCheck is a syncer whose check made while writes are held finds
// the clusters different.
type failingCheck struct{ *simulated.DataPlane }

func (f failingCheck) Switch(context.Context, *domain.Migration) (domain.SwitchedOver, domain.Verified, func(bool), error) {
	report := []byte(`{"equal":false,"collections":[{"database":"d","collection":"c","source_rows":10,"target_rows":9,"equal":false}]}`)
	return domain.SwitchedOver{}, domain.Verified{Phase: "switch", Equal: false, Report: report}, nil,
		&domain.StepError{Reason: "switch_check_failed", Permanent: true, Err: errors.New("after the drain the target differs from the source")}
}

// A switch whose check fails keeps that check's report in the history,
// where the operator looks for what differed.
func TestAFailedSwitchCheckIsKeptInTheHistory(t *testing.T) {
	dp := simulated.New(simulated.Config{LagStep: time.Millisecond})
	h := newHarness(t, handlers.StepsOf(domain.ProvisionerSimulated, dp))
	h.steps.Syncer = failingCheck{dp}
	h.runSaga(t)
	id := h.start(t, domain.ProvisionerSimulated, "1h")
	h.wait(t, id, domain.StateSyncing)
	stopSync(t, h, id)
	m := h.wait(t, id, domain.StateFailed)
	last := m.Verifications[len(m.Verifications)-1]
	if last.Phase != "switch" || last.Equal || !strings.Contains(string(last.Report), `"target_rows":9`) {
		t.Fatalf("verifications %+v, want the failed switch check's report last", m.Verifications)
	}
}

// The operator's stop ends the sync step through its event; a step that
// never gets the event (its delivery late: handed to a dead instance's
// pull, it comes again only after the ack wait) ends on the recorded state
// and the migration switches over.
func TestTheSyncStepEndsOnTheRecordedStopWithoutItsEvent(t *testing.T) {
	dp := simulated.New(simulated.Config{LagStart: 1, LagStep: 10 * time.Millisecond})
	h := newHarness(t, handlers.StepsOf(domain.ProvisionerSimulated, dp))
	_, id := h.stoppedWithoutItsEvent(t)
	h.wait(t, id, domain.StateSwitchedOver)
}

// stoppedWithoutItsEvent starts a migration on the simulated
// provisioner, runs a saga without a reactor (it resumes the migration it
// finds and hears of no event unless the test hands it one) until the
// test ends, and records the operator's stop once the migration syncs.
func (h *harness) stoppedWithoutItsEvent(t *testing.T) (saga *handlers.Saga, id string) {
	t.Helper()
	id = h.start(t, domain.ProvisionerSimulated, "1h")
	ctx, cancel := context.WithCancel(context.Background())
	saga = handlers.NewSaga(h.svc, h.steps, h.store, nil, handlers.SagaConfig{LagRecordInterval: 10 * time.Millisecond,
		Tick: 5 * time.Millisecond, Retry: retry.Policy{Attempts: 3, First: time.Millisecond}})
	if err := saga.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); saga.Wait() })
	h.wait(t, id, domain.StateSyncing)
	if _, err := h.svc.StopSync(context.Background(), admin, "stop-1", id, handlers.StopSync{ConfirmWritesStopped: true, Force: true}); err != nil {
		t.Fatal(err)
	}
	return saga, id
}
