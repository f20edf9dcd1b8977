package handlers_test

import (
	"context"
	"errors"
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

// A start of one Milvus registered twice, sent right after the answer to
// the start of the other registration, passed a check made on the
// registry's view, which did not yet hold the first lock: both ran. The
// lock of each twin is read from its events.
func TestAStartRightAfterItsTwinsIsRefusedWhateverTheRegistryShows(t *testing.T) {
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
	h.svc.CheckClustersWith(registrations{ids: ids})
	start := func(i int) (*domain.Migration, error) {
		return h.svc.StartMigration(ctx, admin, "start-"+ids[i], handlers.StartMigration{
			SourceClusterID: ids[i], Target: domain.TargetSpec{Name: "next", Project: "p", Provisioner: domain.ProvisionerSimulated}})
	}
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
