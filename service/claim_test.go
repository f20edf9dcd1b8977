package service

import (
	"context"
	"testing"
	"time"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/projections"
	"github.com/zdm-io/zdm/projections/viewstest"
)

// A target's claim is read from the registry again once it changes, and
// not before: the migration that claims it, then none after the switch;
// another registration of the same Milvus is claimed with it.
func TestAClaimFollowsTheRegistry(t *testing.T) {
	ctx := context.Background()
	clusters := projections.NewClusters(viewstest.New())
	subject, err := domain.ClusterStream("c-1")
	if err != nil {
		t.Fatal(err)
	}
	seq := uint64(0)
	record := func(e domain.Event) {
		seq++
		if err := clusters.Handle(ctx, subject, []domain.Record{{Seq: seq, At: time.Now(), Actor: "t", Event: e}}); err != nil {
			t.Fatal(err)
		}
	}
	record(domain.ClusterRegistered{Name: "spare", Organization: "acme", Project: "p", Endpoint: "h:1", Spare: true})
	// The same Milvus registered again, in other letters, and a third
	// cluster elsewhere: the first is guarded with the target, not the
	// other.
	for id, ep := range map[string]string{"c-2": "H:1", "c-3": "h:2"} {
		other, err := domain.ClusterStream(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := clusters.Handle(ctx, other, []domain.Record{{Seq: 1, At: time.Now(), Actor: "t",
			Event: domain.ClusterRegistered{Name: id, Organization: "acme", Project: "p", Endpoint: ep, ProxyListen: "127.0.0.1:0"}}}); err != nil {
			t.Fatal(err)
		}
	}
	c := &claim{clusters: clusters, id: "c-1"}
	twice, elsewhere := &claim{clusters: clusters, id: "c-2"}, &claim{clusters: clusters, id: "c-3"}
	if got := c.by() + twice.by() + elsewhere.by(); got != "" {
		t.Fatalf("a spare is claimed by %q", got)
	}
	record(domain.ClusterClaimed{MigrationID: "m-1"})
	if got := c.by(); got != "m-1" {
		t.Fatalf("the claimed target: %q, want m-1", got)
	}
	if got := twice.by(); got != "m-1" {
		t.Fatalf("the target's Milvus registered again: %q, want m-1", got)
	}
	if got := elsewhere.by(); got != "" {
		t.Fatalf("another Milvus is claimed by %q", got)
	}
	record(domain.ClusterActivated{MigrationID: "m-1"})
	if got := c.by() + twice.by(); got != "" {
		t.Fatalf("after the switch the target is claimed by %q", got)
	}
}
