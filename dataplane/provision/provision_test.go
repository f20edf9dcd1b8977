package provision_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/provision"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/domain/domaintest"
)

func TestLocalProvisionerStartsAndReleasesANewServer(t *testing.T) {
	bed := milvustest.Require(t)
	p := provision.NewLocalProvisioner(provision.ServerScript{
		Python: bed.Python, Script: filepath.Join(bed.Root, "scripts", "milvus_server.py"), Root: filepath.Join(bed.Root, ".cache", "milvus"),
	}, 21000)
	ctx := context.Background()
	m := domaintest.Migration("m-provtest", bed.Source)
	t.Cleanup(func() { _ = p.Release(ctx, m) })
	target, err := p.Provision(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if target.Endpoint == bed.Source || target.Endpoint == bed.Target || !strings.HasPrefix(target.Version, "v2.3") || target.ClusterID != "t-m-provtest" {
		t.Fatalf("target: %+v", target)
	}
	c := milvustest.Dial(t, target.Endpoint)
	if dbs, err := c.Databases(ctx); err != nil || len(dbs) != 1 {
		t.Fatalf("new server is not empty: %v %v", dbs, err)
	}
	// A retried provision (after a crash) finds the same server.
	again, err := p.Provision(ctx, m)
	if err != nil || again.Endpoint != target.Endpoint {
		t.Fatalf("retry: %+v %v", again, err)
	}
	if err := p.Release(ctx, m); err != nil {
		t.Fatal(err)
	}
	if ln, err := net.Listen("tcp", target.Endpoint); err != nil {
		t.Fatalf("released server still holds %s: %v", target.Endpoint, err)
	} else {
		ln.Close()
	}
}

type spares struct{ list []provision.Spare }

func (s spares) Spares(org string) []provision.Spare { return s.list }
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
	_, err = provision.NewPoolProvisioner(spares{[]provision.Spare{unreachable, busy}}).Provision(ctx, m)
	var se *domain.StepError
	if !errors.As(err, &se) || se.Reason != "no_usable_spare" || !se.Permanent ||
		!strings.Contains(err.Error(), "down (c-down): unreachable") || !strings.Contains(err.Error(), "busy (c-busy): not empty") {
		t.Fatalf("refusal: %v", err)
	}
	_, err = provision.NewPoolProvisioner(spares{}).Provision(ctx, m)
	if !errors.As(err, &se) || se.Reason != "no_spare_cluster" {
		t.Fatalf("no spares: %v", err)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"v2.3.5-lite", "v2.3.5", 0}, {"v2.3.4", "v2.3.5", -1}, {"2.4.0", "v2.3.9", 1}, {"v2.10.0", "v2.9.1", 1}} {
		if got := milvus.CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("%s vs %s = %d", c.a, c.b, got)
		}
	}
}
