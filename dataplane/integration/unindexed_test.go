package integration_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/domain/domaintest"
)

// A source collection without an index cannot be loaded, so its rows can
// be neither copied nor checked: the preflight refuses the migration,
// naming it and what to do, before anything is copied, where the copy
// used to fail on reaching it.
func TestThePreflightRefusesACollectionMilvusCannotLoad(t *testing.T) {
	bed := milvustest.Empty(t)
	src := milvustest.Dial(t, bed.Source)
	milvustest.Seed(t, src, datatools.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 4, PKType: "int64", Index: "none", Shards: 1, Prefix: "bare_"})
	milvustest.Seed(t, src, datatools.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 4, PKType: "int64", Index: "FLAT", Shards: 1, Prefix: "fine_"})
	c := rowcopy.NewCopier(endpoints{"src": bed.Source, "dst": bed.Target}, rowcopy.Config{}, nil)
	m := domaintest.Migration("m-bare", "")
	m.TargetCluster, m.Source.ID = domain.TargetProvisioned{ClusterID: "dst"}, "src"
	_, err := c.Plan(context.Background(), m)
	var se *domain.StepError
	if !errors.As(err, &se) || se.Reason != "preflight_refused" || !strings.Contains(err.Error(), "bare_db0/bare_c0 field v has no index") ||
		!strings.Contains(err.Error(), "create an index") || strings.Contains(err.Error(), "fine_") {
		t.Fatalf("plan: %v", err)
	}
}
