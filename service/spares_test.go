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
	for _, s := range sparesOf(views, "acme") {
		got[s.ID] = s.InUse
	}
	if len(got) != 2 || got["c-free"] != "" || !strings.Contains(got["c-twin"], "cluster c-src, in migration m-1") {
		t.Fatalf("spares of acme: %v; want c-free free and c-twin in use by c-src", got)
	}
}
