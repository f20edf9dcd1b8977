package handlers_test

import (
	"context"
	"strings"
	"testing"

	"github.com/zdm-io/zdm/dataplane/simulated"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/handlers"
)

// endpointsIndex knows each registration's endpoint, and nothing of the
// holds: as a registry that has not yet taken in a hold made a moment ago.
type endpointsIndex map[string]string

func (endpointsIndex) ListenHolder(string, string) (string, string) { return "", "" }

func (ix endpointsIndex) EndpointTwins(endpoint, except string) []string {
	var out []string
	for id, ep := range ix {
		if ep == endpoint && id != except {
			out = append(out, id)
		}
	}
	return out
}

func (endpointsIndex) SeenCluster(context.Context, string, uint64) error { return nil }

// claimsOne offers one spare, whatever holds its Milvus: a pool that read
// the registry before a start of the spare's twin was stored.
type claimsOne struct {
	*simulated.DataPlane
	spare string
}

func (p claimsOne) Provision(context.Context, *domain.Migration) (domain.Target, error) {
	return domain.Target{ClusterID: p.spare, Endpoint: "milvus:19530", Version: "2.3.5", Registered: true}, nil
}

// A spare that is also registered as a source, under another ID, and a
// start of that source: the pool's claim of the spare passed its check
// before the start's lock was stored, and the start's check before the
// claim was. The hold stored first keeps the Milvus: the claim, stored
// second, is given back, and the migration that made it does not take
// the Milvus as its target.
func TestAClaimOfASpareStoredAfterTheLockOfItsTwinIsGivenBack(t *testing.T) {
	ctx := context.Background()
	dp := simulated.New(simulated.Config{})
	steps := handlers.StepsOf(domain.ProvisionerSimulated, dp)
	h := newHarness(t, steps)
	register := func(name, endpoint string, spare bool) string {
		c, err := h.svc.RegisterCluster(ctx, admin, "reg-"+name, handlers.RegisterCluster{Name: name, Organization: "acme", Project: "p", Endpoint: endpoint, Spare: spare})
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	source, spare, other := register("prod", "milvus:19530", false), register("spare", "milvus:19530", true), register("other", "other:19530", false)
	h.svc.CheckClustersWith(endpointsIndex{source: "milvus:19530", spare: "milvus:19530", other: "other:19530"})
	steps.Provisioners = map[string]handlers.Provisioner{domain.ProvisionerSimulated: dp, domain.ProvisionerPool: claimsOne{dp, spare}}
	h.steps = steps

	locked, err := h.svc.StartMigration(ctx, admin, "start-prod", handlers.StartMigration{
		SourceClusterID: source, Target: domain.TargetSpec{Name: "next", Project: "p", Provisioner: domain.ProvisionerSimulated}})
	if err != nil {
		t.Fatal(err)
	}
	claiming, err := h.svc.StartMigration(ctx, admin, "start-other", handlers.StartMigration{
		SourceClusterID: other, Target: domain.TargetSpec{Name: "next", Project: "p", Provisioner: domain.ProvisionerPool}})
	if err != nil {
		t.Fatal(err)
	}
	h.runSaga(t)
	m := h.wait(t, claiming.ID, domain.StateFailed)
	if !strings.Contains(m.FailureDetail, "spare "+spare+" given back") || !strings.Contains(m.FailureDetail, "they are one Milvus") {
		t.Fatalf("the claiming migration failed with %q; want the spare given back, one Milvus with %s", m.FailureDetail, source)
	}
	c, err := h.svc.Cluster(ctx, spare)
	if err != nil || c.ClaimedBy != "" || !c.Spare {
		t.Fatalf("the spare after the claim stored second: claimed by %q, spare %v (%v); want given back, a spare again", c.ClaimedBy, c.Spare, err)
	}
	if src, err := h.svc.Cluster(ctx, source); err != nil || src.LockedBy != locked.ID {
		t.Fatalf("the source is locked by %q (%v); want %s, whose lock was stored first", src.LockedBy, err, locked.ID)
	}
}
