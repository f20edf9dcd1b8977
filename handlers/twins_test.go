package handlers_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/handlers"
)

// registrations is a registry that knows which clusters are one Milvus
// and nothing of their locks, as a view that has not caught up with a
// lock taken a moment ago.
type registrations struct{ ids []string }

func (registrations) ListenHolder(string, string) (string, string) { return "", "" }

func (r registrations) EndpointTwins(_, except string) []string {
	return slices.DeleteFunc(slices.Clone(r.ids), func(id string) bool { return id == except })
}

func (registrations) SeenCluster(context.Context, string, uint64) error { return nil }

// twins registers one Milvus twice and returns the registrations and a
// start of the i-th.
func twins(t *testing.T) (*harness, []string, func(i int) (*domain.Migration, error)) {
	h := newHarness(t, handlers.StepsOf(domain.ProvisionerSimulated, nil))
	ctx := context.Background()
	var ids []string
	for _, name := range []string{"one", "again"} {
		c, err := h.svc.RegisterCluster(ctx, admin, "reg-"+name, handlers.RegisterCluster{Name: name, Organization: "acme", Project: "p", Endpoint: "milvus:19530"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	return h, ids, func(i int) (*domain.Migration, error) {
		return h.svc.StartMigration(ctx, admin, "start-"+ids[i], handlers.StartMigration{
			SourceClusterID: ids[i], Target: domain.TargetSpec{Name: "next", Project: "p", Provisioner: domain.ProvisionerSimulated}})
	}
}

// A start of one Milvus registered twice, sent right after the answer to
// the start of the other registration, passed a check made on the
// registry's view, which did not yet hold the first lock: both ran. The
// lock of each twin is read from its events.
func TestAStartRightAfterItsTwinsIsRefusedWhateverTheRegistryShows(t *testing.T) {
	h, ids, start := twins(t)
	h.svc.CheckClustersWith(registrations{ids: ids})
	first, err := start(0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = start(1)
	var busy *domain.BusyError
	if !errors.As(err, &busy) || busy.MigrationID != first.ID || busy.SameEndpointAs != ids[0] {
		t.Fatalf("a start of the same Milvus under its other registration: %v, want busy with %s through %s", err, first.ID, ids[0])
	}
}

// lateRegistry has not yet taken in the second registration when the
// first start checks its twins (it was made on another zdmd a moment
// ago), and that start's twin is started and locked right then: both
// starts pass the check before the lock. The registry knows the twin
// once it has caught up with the first start's lock, as SeenCluster
// promises.
type lateRegistry struct {
	registrations
	calls    int
	meantime func()
	stalled  error // what SeenCluster answers: a registry that did not catch up
}

func (r *lateRegistry) EndpointTwins(endpoint, except string) []string {
	r.calls++
	if r.calls == 1 && except == r.ids[0] {
		r.meantime()
		return nil
	}
	return r.registrations.EndpointTwins(endpoint, except)
}

func (r *lateRegistry) SeenCluster(context.Context, string, uint64) error { return r.stalled }

// Two starts of one Milvus registered twice that each passed the check
// before the other locked: the one whose lock is stored first keeps the
// Milvus; the other gives its lock back, fails with source_busy and is
// answered 409 naming the twin, its migration and the failed one it left.
func TestOfTwoStartsOfOneMilvusThatBothPassedTheCheckTheFirstLockedKeepsIt(t *testing.T) {
	// A registry that has not caught up with the lock in time is read as
	// it is (here it knows the twin by then).
	for _, stalled := range []error{nil, context.DeadlineExceeded} {
		t.Run(fmt.Sprint("registry caught up: ", stalled == nil), func(t *testing.T) { firstLockedKeepsIt(t, stalled) })
	}
}

func firstLockedKeepsIt(t *testing.T, stalled error) {
	h, ids, start := twins(t)
	ctx := context.Background()
	var second *domain.Migration
	var secondErr error
	reg := &lateRegistry{registrations: registrations{ids: ids}, stalled: stalled}
	reg.meantime = func() { second, secondErr = start(1) }
	h.svc.CheckClustersWith(reg)
	_, err := start(0)
	if secondErr != nil {
		t.Fatalf("the start locked first: %v", secondErr)
	}
	var busy *domain.BusyError
	if !errors.As(err, &busy) || busy.MigrationID != second.ID || busy.SameEndpointAs != ids[1] || busy.Recorded == "" {
		t.Fatalf("the start locked second: %v, want busy with %s through %s, naming the migration it left", err, second.ID, ids[1])
	}
	left, err := h.svc.Migration(ctx, busy.Recorded)
	if err != nil || left.State != domain.StateFailed || left.FailureReason != handlers.ReasonSourceBusy {
		t.Fatalf("the migration the second lock left: %+v %v, want failed with %s", left, err, handlers.ReasonSourceBusy)
	}
	for i, want := range []string{"", second.ID} {
		c, err := h.svc.Cluster(ctx, ids[i])
		if err != nil || c.LockedBy != want {
			t.Fatalf("cluster %s locked by %q (%v), want %q", ids[i], c.LockedBy, err, want)
		}
	}
}
