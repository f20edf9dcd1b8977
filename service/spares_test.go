package service

import (
	"strings"
	"testing"

	"github.com/zdm-io/zdm/projections"
)

// A spare is offered free unless the Milvus behind it, registered again
// under another ID, is in a running migration; endpoints compare without
// regard to case.
func TestASpareWhoseMilvusIsInAMigrationUnderAnotherNameIsNotFree(t *testing.T) {
	views := []*projections.ClusterView{
		{ID: "c-src", Organization: "acme", Endpoint: "Milvus-A:19530", MigrationID: "m-1"},
		{ID: "c-twin", Organization: "acme", Endpoint: "milvus-a:19530", Spare: true},
		{ID: "c-free", Organization: "acme", Endpoint: "milvus-b:19530", Spare: true},
		{ID: "c-other", Organization: "globex", Endpoint: "milvus-c:19530", Spare: true},
		{ID: "c-gone", Organization: "acme", Endpoint: "milvus-b:19530", MigrationID: "m-0", Deleted: true},
	}
	got := map[string]string{}
	for _, s := range sparesOf(views, "acme", "m-2") {
		got[s.ID] = s.InUse
	}
	if len(got) != 2 || got["c-free"] != "" || !strings.Contains(got["c-twin"], "cluster c-src, in migration m-1") {
		t.Fatalf("spares of acme: %v; want c-free free and c-twin in use by c-src", got)
	}
}

// A provision tried again after its claim of a spare was stored (the
// record of the target after it failed) is offered that spare first: it
// is no longer free, and the pool would otherwise claim a second one for
// the same migration and leave the first claimed by it.
func TestTheSpareAMigrationClaimedIsOfferedToItFirst(t *testing.T) {
	claimed := &projections.ClusterView{ID: "c-claimed", Organization: "acme", Endpoint: "milvus-a:19530", MigrationID: "m-1"}
	claimed.State.ClaimedBy = "m-1"
	views := []*projections.ClusterView{
		{ID: "c-free", Organization: "acme", Endpoint: "milvus-b:19530", Spare: true},
		claimed,
	}
	var got []string
	for _, s := range sparesOf(views, "acme", "m-1") {
		got = append(got, s.ID+":"+s.InUse)
	}
	if strings.Join(got, " ") != "c-claimed: c-free:" {
		t.Fatalf("spares offered to m-1: %v; want c-claimed first and free, then c-free", got)
	}
	got = nil
	for _, s := range sparesOf(views, "acme", "m-2") {
		got = append(got, s.ID)
	}
	if strings.Join(got, " ") != "c-free" {
		t.Fatalf("spares offered to m-2: %v; want c-free alone", got)
	}
}
