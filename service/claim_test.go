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
// not before: the migration that claims it, then none after the switch.
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
	c := &claim{clusters: clusters, id: "c-1"}
	if got := c.by(); got != "" {
		t.Fatalf("a spare is claimed by %q", got)
	}
	record(domain.ClusterClaimed{MigrationID: "m-1"})
	if got := c.by(); got != "m-1" {
		t.Fatalf("the claimed target: %q, want m-1", got)
	}
	record(domain.ClusterActivated{MigrationID: "m-1"})
	if got := c.by(); got != "" {
		t.Fatalf("after the switch the target is claimed by %q", got)
	}
}
