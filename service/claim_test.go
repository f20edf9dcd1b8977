package service

import (
	"context"
	"testing"
	"time"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/projections"
	"github.com/zdm-io/zdm/projections/viewstest"
)

// A target's claim follows the registry as it changes: the migration
// that claims it, then none after the switch; another registration of
// the same Milvus is claimed with it.
func TestAClaimFollowsTheRegistry(t *testing.T) {
	ctx := context.Background()
	clusters := projections.NewClusters(viewstest.New())
	seqs := map[string]uint64{}
	record := func(id string, e domain.Event) {
		t.Helper()
		subject, err := domain.ClusterStream(id)
		if err != nil {
			t.Fatal(err)
		}
		seqs[id]++
		if err := clusters.Handle(ctx, subject, []domain.Record{{Seq: seqs[id], At: time.Now(), Actor: "t", Event: e}}); err != nil {
			t.Fatal(err)
		}
	}
	record("c-1", domain.ClusterRegistered{Name: "spare", Organization: "acme", Project: "p", Endpoint: "h:1", Spare: true})
	// The same Milvus registered again, in other letters, and a third
	// cluster elsewhere: the first is guarded with the target, not the
	// other.
	record("c-2", domain.ClusterRegistered{Name: "c-2", Organization: "acme", Project: "p", Endpoint: "H:1", ProxyListen: "127.0.0.1:0"})
	record("c-3", domain.ClusterRegistered{Name: "c-3", Organization: "acme", Project: "p", Endpoint: "h:2", ProxyListen: "127.0.0.1:0"})
	c := &claim{clusters: clusters, id: "c-1"}
	twice, elsewhere := &claim{clusters: clusters, id: "c-2"}, &claim{clusters: clusters, id: "c-3"}
	if got := c.by() + twice.by() + elsewhere.by(); got != "" {
		t.Fatalf("a spare is claimed by %q", got)
	}
	record("c-1", domain.ClusterClaimed{MigrationID: "m-1"})
	if got := c.by(); got != "m-1" {
		t.Fatalf("the claimed target: %q, want m-1", got)
	}
	if got := twice.by(); got != "m-1" {
		t.Fatalf("the target's Milvus registered again: %q, want m-1", got)
	}
	if got := elsewhere.by(); got != "" {
		t.Fatalf("another Milvus is claimed by %q", got)
	}
	record("c-1", domain.ClusterActivated{MigrationID: "m-1"})
	if got := c.by() + twice.by(); got != "" {
		t.Fatalf("after the switch the target is claimed by %q", got)
	}
}
