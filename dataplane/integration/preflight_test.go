package integration_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
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
	if refused := preflightRefusal(t, c); !strings.Contains(refused, "bare_db0/bare_c0 field v has no index") ||
		!strings.Contains(refused, "create an index") || strings.Contains(refused, "fine_") {
		t.Fatalf("plan: %v", refused)
	}
}

// The copy gives the target the source's roles, and the preflight names
// the users it lacks: zdm cannot make them (Milvus never reveals a
// password), and applications that sign in as them would be refused by
// the target after the switch.
func TestTheCopyGivesRolesAndThePreflightNamesUsersTheTargetLacks(t *testing.T) {
	bed := milvustest.Empty(t)
	src := milvustest.Dial(t, bed.Source)
	ctx := context.Background()
	svc := src.Service()
	s, err := svc.CreateCredential(ctx, &milvuspb.CreateCredentialRequest{Username: "zdm_app", Password: base64.StdEncoding.EncodeToString([]byte("secret-1"))})
	if err := milvus.Check("create user", s, err); err != nil {
		t.Fatal(err)
	}
	s, err = svc.CreateRole(ctx, &milvuspb.CreateRoleRequest{Entity: &milvuspb.RoleEntity{Name: "zdm_reader"}})
	if err := milvus.Check("create role", s, err); err != nil {
		t.Fatal(err)
	}
	dst := milvustest.Dial(t, bed.Target)
	t.Cleanup(func() {
		_, _ = svc.DropRole(ctx, &milvuspb.DropRoleRequest{RoleName: "zdm_reader"})
		_, _ = svc.DeleteCredential(ctx, &milvuspb.DeleteCredentialRequest{Username: "zdm_app"})
		_, _ = dst.Service().DropRole(ctx, &milvuspb.DropRoleRequest{RoleName: "zdm_reader"})
	})
	milvustest.Seed(t, src, datatools.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 4, PKType: "int64", Index: "FLAT", Shards: 1, Prefix: "acc_"})
	m := planned(t, rowcopy.NewCopier(endpoints{"src": bed.Source, "dst": bed.Target}, rowcopy.Config{}, nil))
	var pf rowcopy.Preflight
	if err := json.Unmarshal(m.Preflight, &pf); err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(pf.Notes, " ")
	if !strings.Contains(notes, "lacks users [zdm_app] of the source") || !strings.Contains(notes, "same passwords") || strings.Contains(notes, "zdm_reader") {
		t.Errorf("preflight notes: %s", notes)
	}
	if ac, err := dst.Access(ctx); err != nil || !slices.Contains(ac.Roles, "zdm_reader") {
		t.Errorf("the target's roles: %v (%v)", ac.Roles, err)
	}
}

// A collection an application loaded only in part answers queries from
// those partitions only: the copy failed on the others ("partition not
// loaded"). The preflight refuses it, naming the partitions not loaded,
// and changes nothing of what the application loaded.
func TestThePreflightRefusesACollectionLoadedInPart(t *testing.T) {
	bed := milvustest.Empty(t)
	src := milvustest.Dial(t, bed.Source)
	ctx := context.Background()
	milvustest.Seed(t, src, datatools.Shape{Databases: 1, Collections: 1, Partitions: 2, Rows: 30, Dim: 4, PKType: "int64", Index: "FLAT", Shards: 1, Prefix: "part_"})
	s, err := src.Service().LoadPartitions(src.In(ctx, "part_db0"), &milvuspb.LoadPartitionsRequest{DbName: "part_db0", CollectionName: "part_c0", PartitionNames: []string{"p1"}})
	if err := milvus.Check("load p1", s, err); err != nil {
		t.Fatal(err)
	}
	loaded := func() bool {
		r, err := src.Service().GetLoadState(src.In(ctx, "part_db0"), &milvuspb.GetLoadStateRequest{DbName: "part_db0", CollectionName: "part_c0", PartitionNames: []string{"p1"}})
		return err == nil && r.GetState() == commonpb.LoadState_LoadStateLoaded
	}
	for deadline := time.Now().Add(time.Minute); !loaded(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("p1 not loaded within a minute")
		}
	}
	c := rowcopy.NewCopier(endpoints{"src": bed.Source, "dst": bed.Target}, rowcopy.Config{}, nil)
	if refused := preflightRefusal(t, c); !strings.Contains(refused, "part_db0/part_c0 has only some of its partitions loaded (not [_default p0])") {
		t.Fatalf("plan: %v", refused)
	}
	if !loaded() {
		t.Error("the preflight changed what the application loaded")
	}
}
