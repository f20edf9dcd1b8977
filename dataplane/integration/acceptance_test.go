package integration_test

import (
	"context"
	"testing"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/dataplane/verify"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore/estest"
	"github.com/zdm-io/zdm/handlers"
	"github.com/zdm-io/zdm/handlers/porttest"
)

// The Milvus data plane meets the contract every data plane does (the
// simulated one runs the same suite).
func TestTheMilvusDataPlaneMeetsTheContract(t *testing.T) {
	bed := milvustest.Empty(t)
	src := milvustest.Dial(t, bed.Source)
	milvustest.Seed(t, src, datatools.Shape{Databases: 2, Collections: 2, Rows: 3000, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "accept_"})
	store := estest.NewStore(t)
	journal := estest.Journal(t, store)
	resolve := endpoints{"src": bed.Source, "dst": bed.Target}
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	current := &porttest.Current{}
	c := capture.NewCapture(journal, nil, nil)
	c.KeepGivenKeys(estest.KV(t, store, "TEST_INTENTS"))
	steps := handlers.Steps{
		Copier: rowcopy.NewCopier(resolve, rowcopy.Config{Workers: 2, PageRows: 500, RangeRows: 1000}, nil),
		Syncer: livesync.NewSyncer(ctx, resolve, c, journal, estest.KV(t, store, "TEST_APPLY"), current, &failures{},
			livesync.Config{LagEvery: 100 * time.Millisecond}, nil),
		Verifier: verify.NewMigrationVerifier(resolve, verify.Options{}),
	}
	source := domain.ClusterRef{ID: "src", Name: "prod", Organization: "acme", Project: "p", Endpoint: bed.Source}
	porttest.DataPlane(t, steps, source, domain.TargetProvisioned{ClusterID: "dst", Endpoint: bed.Target}, current)
}
