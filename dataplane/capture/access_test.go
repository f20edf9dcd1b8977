package capture

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
)

// Calls about users, roles and privileges through the proxy are
// journaled for the target, whatever database the client named, on one
// subject: a grant is replayed after the role it names is made. They
// touch no collection, so they excuse no change of one.
func TestAccessCallsAreJournaledInOrderAndExcuseNoSchemaChange(t *testing.T) {
	c, journal := journaledCapture(t)
	ctx := context.Background()
	began := time.Now()
	calls := []struct {
		method, dbHeader string
		msg              proto.Message
	}{
		{"CreateCredential", "", &milvuspb.CreateCredentialRequest{Username: "u", Password: "cHc="}},
		{"CreateRole", "d", &milvuspb.CreateRoleRequest{Entity: &milvuspb.RoleEntity{Name: "r"}}},
		{"OperatePrivilege", "d", &milvuspb.OperatePrivilegeRequest{Entity: &milvuspb.GrantEntity{Role: &milvuspb.RoleEntity{Name: "r"}, DbName: "d"}}},
		{"OperateUserRole", "", &milvuspb.OperateUserRoleRequest{Username: "u", RoleName: "r"}},
	}
	for _, d := range calls {
		req, _ := proto.Marshal(d.msg)
		k, err := c.before(ctx, "src", "/milvus.proto.milvus.MilvusService/"+d.method, req, d.dbHeader, nil)
		if err != nil {
			t.Fatal(err)
		}
		ok, _ := proto.Marshal(&commonpb.Status{})
		if err := c.after(ctx, k, req, ok); err != nil {
			t.Fatal(err)
		}
	}
	var methods []string
	for seq := uint64(1); ; seq++ {
		s, data, found, err := journal.Next(ctx, DatabaseSubject("m-1", "default"), seq)
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			break
		}
		e, err := UnmarshalEntry(data)
		if err != nil {
			t.Fatal(err)
		}
		if e.Op != OpDDL {
			t.Errorf("%s journaled as %s", e.Method, e.Op)
		}
		methods, seq = append(methods, e.Method+"@"+e.Database), s
	}
	want := []string{"CreateCredential@default", "CreateRole@d", "OperatePrivilege@d", "OperateUserRole@default"}
	if !slices.Equal(methods, want) {
		t.Fatalf("journaled %v, want %v", methods, want)
	}
	touched := c.DDLSince("m-1", began.Add(-time.Second))
	for _, key := range []string{"database default", "database d", "collection d/c"} {
		if touched(key) {
			t.Errorf("a call about access excused changes of %s", key)
		}
	}
}
