package integration_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/adapters/secrets"
	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
)

// signIn connects to addr as user, with password.
func signIn(t *testing.T, addr, user, password string) (*milvus.Conn, error) {
	t.Helper()
	c, err := milvus.Dial(context.Background(), milvus.Endpoint{Address: addr, Username: user, Password: password})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Version(context.Background()); err != nil {
		return nil, err
	}
	return c, nil
}

// On clusters that make users sign in, the copy gives the target the
// source's roles, their privileges and the roles of the users both have;
// a user only the source has is named for the operator (its password is
// not to be read). Users, roles and privileges made or changed through
// the proxy while the migration runs are made alike on the target, new
// passwords included: an application signs in there after the switch as
// it did before.
func TestRolesUsersAndPasswordsReachTheTarget(t *testing.T) {
	bed := milvustest.Require(t)
	var srcAddr, dstAddr string
	var wg sync.WaitGroup
	wg.Go(func() { srcAddr = bed.WithAuth(t, "auth-source", 19860) })
	wg.Go(func() { dstAddr = bed.WithAuth(t, "auth-target", 19890) })
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	root := func(addr string) milvus.Endpoint {
		return milvus.Endpoint{Address: addr, Username: "root", Password: milvustest.RootPassword}
	}
	eps := endpointsOf{"src": root(srcAddr), "dst": root(dstAddr)}
	src, err := signIn(t, srcAddr, "root", milvustest.RootPassword)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := signIn(t, dstAddr, "root", milvustest.RootPassword)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	call := func(c *milvus.Conn, op string, f func(context.Context, milvuspb.MilvusServiceClient) (*commonpb.Status, error)) {
		t.Helper()
		s, err := f(c.In(ctx, ""), c.Service())
		if err := milvus.Check(op, s, err); err != nil {
			t.Fatal(err)
		}
	}
	pw := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	createUser := func(c *milvus.Conn, user, password string) {
		call(c, "create user "+user, func(ctx context.Context, s milvuspb.MilvusServiceClient) (*commonpb.Status, error) {
			return s.CreateCredential(ctx, &milvuspb.CreateCredentialRequest{Username: user, Password: pw(password)})
		})
	}
	// Before the migration: role reader, granted two privileges, held by
	// app (on both clusters, same password) and by only_src.
	createUser(src, "app", "app-pass-1")
	createUser(dst, "app", "app-pass-1")
	createUser(src, "only_src", "only-pass-1")
	if err := src.CreateRole(ctx, "reader"); err != nil {
		t.Fatal(err)
	}
	readerGrants := []milvus.Grant{
		{Role: "reader", Object: "Collection", ObjectName: "*", Privilege: "Query", Database: "default"},
		{Role: "reader", Object: "Global", ObjectName: "*", Privilege: "DescribeCollection", Database: "default"},
	}
	for _, g := range readerGrants {
		if err := src.GrantPrivilege(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"app", "only_src"} {
		if err := src.AddUserToRole(ctx, u, "reader"); err != nil {
			t.Fatal(err)
		}
	}
	milvustest.Seed(t, src, datatools.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 4, PKType: "int64", Index: "FLAT", Shards: 1, Prefix: "auth_"})

	m := planned(t, rowcopy.NewCopier(eps, rowcopy.Config{}, nil))
	var pf rowcopy.Preflight
	if err := json.Unmarshal(m.Preflight, &pf); err != nil {
		t.Fatal(err)
	}
	if notes := strings.Join(pf.Notes, " "); !strings.Contains(notes, "lacks users [only_src]") || strings.Contains(notes, "could not be copied") {
		t.Errorf("preflight notes: %s", notes)
	}
	got, err := dst.AccessControl(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range readerGrants {
		if !slices.Contains(got.Grants, g) {
			t.Errorf("the target's grants lack %+v: %+v", g, got.Grants)
		}
	}
	if !slices.Contains(got.UserRoles["app"], "reader") {
		t.Errorf("app's roles on the target: %v", got.UserRoles["app"])
	}

	// While the migration syncs, through the proxy: a new user with a
	// new role, a privilege granted and one revoked, app's new password.
	store := estest.NewStore(t)
	b := &syncBed{bed: bed, src: src, dst: dst, id: "m-access", journal: estest.Journal(t, store), intents: estest.KV(t, store, "TEST_INTENTS")}
	b.bed.Source = srcAddr // the proxy stands for it
	key, _ := secrets.LoadKey("", filepath.Join(t.TempDir(), "secret.key"))
	if b.sealer, err = secrets.New(estest.KV(t, store, "TEST_SECRETS"), key, eventstore.ErrKeyNotFound); err != nil {
		t.Fatal(err)
	}
	b.applier = livesync.NewApplier(b.id, b.journal, src, dst, estest.KV(t, store, "TEST_APPLY"), false,
		func(string, string) bool { return true }, func(err error) { t.Error(err) }, nil).OpenPasswords(b.sealer)
	client, err := signIn(t, b.proxy(t), "root", milvustest.RootPassword)
	if err != nil {
		t.Fatal(err)
	}
	createUser(client, "newbie", "newbie-pass-1")
	if err := client.CreateRole(ctx, "writer"); err != nil {
		t.Fatal(err)
	}
	insert := milvus.Grant{Role: "writer", Object: "Collection", ObjectName: "*", Privilege: "Insert", Database: "default"}
	if err := client.GrantPrivilege(ctx, insert); err != nil {
		t.Fatal(err)
	}
	if err := client.AddUserToRole(ctx, "newbie", "writer"); err != nil {
		t.Fatal(err)
	}
	call(client, "revoke Query from reader", func(ctx context.Context, s milvuspb.MilvusServiceClient) (*commonpb.Status, error) {
		g := readerGrants[0]
		return s.OperatePrivilege(ctx, &milvuspb.OperatePrivilegeRequest{Type: milvuspb.OperatePrivilegeType_Revoke, Entity: &milvuspb.GrantEntity{
			Role: &milvuspb.RoleEntity{Name: g.Role}, Object: &milvuspb.ObjectEntity{Name: g.Object}, ObjectName: g.ObjectName, DbName: g.Database,
			Grantor: &milvuspb.GrantorEntity{Privilege: &milvuspb.PrivilegeEntity{Name: g.Privilege}}}})
	})
	call(client, "change app's password", func(ctx context.Context, s milvuspb.MilvusServiceClient) (*commonpb.Status, error) {
		return s.UpdateCredential(ctx, &milvuspb.UpdateCredentialRequest{Username: "app", OldPassword: pw("app-pass-1"), NewPassword: pw("app-pass-2")})
	})
	// Last, as it signs the client out: root's password. zdm signs in to
	// the target as root, so the target keeps its own.
	call(client, "change root's password", func(ctx context.Context, s milvuspb.MilvusServiceClient) (*commonpb.Status, error) {
		return s.UpdateCredential(ctx, &milvuspb.UpdateCredentialRequest{Username: "root", OldPassword: pw(milvustest.RootPassword), NewPassword: pw("root-pass-2")})
	})
	if src, err = signIn(t, srcAddr, "root", "root-pass-2"); err != nil {
		t.Fatal(err)
	}
	journaled := b.journaled(t, capture.DatabaseSubject(b.id, "default"))
	for _, p := range []string{"newbie-pass-1", "app-pass-1", "app-pass-2", "root-pass-2"} {
		if bytes.Contains(journaled, []byte(p)) || bytes.Contains(journaled, []byte(pw(p))) {
			t.Errorf("the journal holds the password %s in the clear", p)
		}
	}
	b.apply(t)
	b.drain(t)
	if _, err := signIn(t, dstAddr, "root", milvustest.RootPassword); err != nil {
		t.Errorf("root's password on the target, which zdm signs in with, was changed: %v", err)
	}

	if _, err := signIn(t, dstAddr, "newbie", "newbie-pass-1"); err != nil {
		t.Errorf("newbie, made through the proxy, cannot sign in to the target: %v", err)
	}
	if _, err := signIn(t, dstAddr, "app", "app-pass-2"); err != nil {
		t.Errorf("app cannot sign in to the target with the password it set through the proxy: %v", err)
	}
	if _, err := signIn(t, dstAddr, "app", "app-pass-1"); err == nil {
		t.Error("app still signs in to the target with its old password")
	}
	want, err := src.AccessControl(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err = dst.AccessControl(ctx); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want.Grants, compareGrants)
	slices.SortFunc(got.Grants, compareGrants)
	if !slices.Equal(want.Grants, got.Grants) {
		t.Errorf("grants differ:\nsource %+v\ntarget %+v", want.Grants, got.Grants)
	}
	for _, u := range []string{"app", "newbie"} {
		if w, g := slices.Sorted(slices.Values(want.UserRoles[u])), slices.Sorted(slices.Values(got.UserRoles[u])); !slices.Equal(w, g) {
			t.Errorf("roles of %s: source %v, target %v", u, w, g)
		}
	}
}

func compareGrants(a, b milvus.Grant) int {
	return strings.Compare(a.Role+a.Object+a.ObjectName+a.Privilege+a.Database, b.Role+b.Object+b.ObjectName+b.Privilege+b.Database)
}
