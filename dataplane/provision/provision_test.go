package provision_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/provision"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/domain/domaintest"
	"github.com/zdm-io/zdm/handlers/porttest"
)

func TestLocalProvisionerStartsAndReleasesANewServer(t *testing.T) {
	bed := milvustest.Require(t)
	p := provision.NewLocalProvisioner(provision.ServerScript{
		Python: bed.Python, Script: filepath.Join(bed.Root, "scripts", "milvus_server.py"), Root: filepath.Join(bed.Root, ".cache", "milvus"),
	}, 21000)
	var endpoint string
	porttest.Provisioner(t, p, domaintest.Migration("m-provtest", bed.Source), func(t *testing.T, target domain.Target) {
		if target.Endpoint == bed.Source || target.Endpoint == bed.Target || !strings.HasPrefix(target.Version, "v2.3") || target.ClusterID != "t-m-provtest" {
			t.Fatalf("target: %+v", target)
		}
		isEmpty(t, target)
		endpoint = target.Endpoint
	})
	if ln, err := net.Listen("tcp", endpoint); err != nil {
		t.Fatalf("released server still holds %s: %v", endpoint, err)
	} else {
		ln.Close()
	}
}

// isEmpty fails the test unless target holds only the default database,
// with no collection.
func isEmpty(t *testing.T, target domain.Target) {
	t.Helper()
	c := milvustest.Dial(t, target.Endpoint)
	inv, err := c.Outline(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Databases) != 1 || len(inv.Databases[0].Collections) != 0 {
		t.Fatalf("the new target is not empty: %d databases, the first with %d collections", len(inv.Databases), len(inv.Databases[0].Collections))
	}
}

type spares struct{ list []provision.Spare }

func (s spares) Spares(string, string) []provision.Spare { return s.list }
func (s spares) ClusterCredentials(context.Context, string) (domain.Credentials, error) {
	return domain.Credentials{}, nil
}

func TestPoolProvisionerClaimsOnlyAnEmptyReachableSpare(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src := milvustest.Dial(t, bed.Source)
	milvustest.Seed(t, src, datatools.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 4, PKType: "int64", Index: "none", Shards: 1, Prefix: "pool_"})
	m := domaintest.Migration("m-pool", bed.Source)
	unreachable := provision.Spare{ID: "c-down", Name: "down", Endpoint: "127.0.0.1:1"}
	busy := provision.Spare{ID: "c-busy", Name: "busy", Endpoint: bed.Source}
	empty := provision.Spare{ID: "c-empty", Name: "empty", Endpoint: bed.Target}

	target, err := provision.NewPoolProvisioner(spares{[]provision.Spare{unreachable, busy, empty}}).Provision(ctx, m)
	if err != nil || target.ClusterID != "c-empty" || !target.Registered {
		t.Fatalf("claim: %+v %v", target, err)
	}
	porttest.Provisioner(t, provision.NewPoolProvisioner(spares{[]provision.Spare{unreachable, busy, empty}}), m, isEmpty)
	_, err = provision.NewPoolProvisioner(spares{[]provision.Spare{unreachable, busy}}).Provision(ctx, m)
	var se *domain.StepError
	if !errors.As(err, &se) || se.Reason != "no_usable_spare" || !se.Permanent ||
		!strings.Contains(err.Error(), "down (c-down): unreachable") || !strings.Contains(err.Error(), "busy (c-busy): not empty") {
		t.Fatalf("refusal: %v", err)
	}
	// An empty, reachable spare whose Milvus another registration has in
	// a running migration is refused with why, before it is reached.
	inUse := empty
	inUse.InUse = "its endpoint is that of cluster c-x, in migration m-x"
	_, err = provision.NewPoolProvisioner(spares{[]provision.Spare{inUse}}).Provision(ctx, m)
	if !errors.As(err, &se) || se.Reason != "no_usable_spare" || !strings.Contains(err.Error(), "empty (c-empty): its endpoint is that of cluster c-x") {
		t.Fatalf("a spare in use elsewhere: %v", err)
	}
	_, err = provision.NewPoolProvisioner(spares{}).Provision(ctx, m)
	if !errors.As(err, &se) || se.Reason != "no_spare_cluster" {
		t.Fatalf("no spares: %v", err)
	}
}
