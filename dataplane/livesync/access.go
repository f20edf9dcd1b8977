package livesync

import (
	"context"
	"fmt"
	"slices"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// applyAccess replays a call about who may sign in and what they may do,
// made through the proxy (db: the database the client named), and says
// whether msg was one. Each is made to hold on the target whatever it
// already holds, so a call replayed twice changes nothing.
func (a *Applier) applyAccess(ctx context.Context, db string, msg proto.Message) (bool, error) {
	t := a.target
	switch r := msg.(type) {
	case *milvuspb.CreateCredentialRequest:
		if a.keepsPassword(ctx, r.GetUsername()) {
			return true, nil
		}
		// A user of that name made on the target by hand takes the
		// password the source's user now has.
		return true, setPassword(ctx, t, r.GetUsername(), r.GetPassword())
	case *milvuspb.UpdateCredentialRequest:
		if a.keepsPassword(ctx, r.GetUsername()) {
			return true, nil
		}
		s, err := t.Svc.UpdateCredential(t.In(ctx, ""), r)
		if milvus.Check("update user "+r.GetUsername(), s, err) == nil {
			return true, nil
		}
		// The target's password is not the one the client changed: set
		// the new one all the same.
		return true, setPassword(ctx, t, r.GetUsername(), r.GetNewPassword())
	case *milvuspb.DeleteCredentialRequest:
		if r.GetUsername() == t.Username() {
			a.warn(ctx, fmt.Sprintf("user %s, deleted on the source through the proxy, is kept on the target: zdm signs in there as it; "+
				"delete it there yourself after the switch, once zdm signs in as another user (zdmd cluster update)", r.GetUsername()))
			return true, nil
		}
		s, err := t.Svc.DeleteCredential(t.In(ctx, ""), r)
		return true, milvus.Check("delete user "+r.GetUsername(), s, err)
	case *milvuspb.CreateRoleRequest:
		return true, t.CreateRole(ctx, r.GetEntity().GetName())
	case *milvuspb.DropRoleRequest:
		ac, err := t.Access(ctx)
		if err != nil || !slices.Contains(ac.Roles, r.GetRoleName()) {
			return true, err
		}
		s, err := t.Svc.DropRole(t.In(ctx, ""), r)
		return true, milvus.Check("drop role "+r.GetRoleName(), s, err)
	case *milvuspb.OperateUserRoleRequest:
		ac, err := t.Access(ctx)
		if err != nil {
			return true, err
		}
		if !slices.Contains(ac.Users, r.GetUsername()) {
			// Made before the migration, its password unknown: the
			// preflight named it for the operator to make.
			a.warn(ctx, fmt.Sprintf("role %s, given to user %s through the proxy, is not given on the target, which lacks the user: "+
				"create the user there with its password, then give it the role", r.GetRoleName(), r.GetUsername()))
			return true, nil
		}
		s, err := t.Svc.OperateUserRole(t.In(ctx, ""), r)
		return true, milvus.Check("change the roles of user "+r.GetUsername(), s, err)
	case *milvuspb.OperatePrivilegeRequest:
		if r.GetEntity() != nil && r.GetEntity().GetDbName() == "" {
			r.Entity.DbName = db
		}
		s, err := t.Svc.OperatePrivilege(t.In(ctx, db), r)
		return true, milvus.Check("change the privileges of role "+r.GetEntity().GetRole().GetName(), s, err)
	}
	return false, nil
}

// keepsPassword says the target's password of user is left as it is:
// zdm signs in to the target as that user, or it is root, which Milvus
// does not let anyone make again. A password change made through the
// proxy for it is noted in the status, and is the operator's to make on
// the target.
func (a *Applier) keepsPassword(ctx context.Context, user string) bool {
	if user != "root" && user != a.target.Username() {
		return false
	}
	a.warn(ctx, fmt.Sprintf("the password of user %s, set on the source through the proxy, is not set on the target: "+
		"zdm signs in there as this user, or it is root; set it there yourself after the switch", user))
	return true
}

// setPassword makes user sign in to t with password (base64, as clients
// send it), keeping the roles it holds there.
func setPassword(ctx context.Context, t *milvus.Conn, user, password string) error {
	ac, err := t.Access(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(ac.Users, user) {
		s, err := t.Svc.DeleteCredential(t.In(ctx, ""), &milvuspb.DeleteCredentialRequest{Username: user})
		if err := milvus.Check("delete user "+user+" to set its password", s, err); err != nil {
			return err
		}
	}
	s, err := t.Svc.CreateCredential(t.In(ctx, ""), &milvuspb.CreateCredentialRequest{Username: user, Password: password})
	if err := milvus.Check("create user "+user, s, err); err != nil {
		return err
	}
	for _, role := range ac.UserRoles[user] {
		if err := t.AddUserToRole(ctx, user, role); err != nil {
			return err
		}
	}
	return nil
}
