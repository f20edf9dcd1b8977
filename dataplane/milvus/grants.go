package milvus

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
)

// Grant is a privilege a role holds on an object of a database.
type Grant struct {
	Role, Object, ObjectName, Privilege, Database string
}

// builtinRole is the role Milvus gives every privilege, which no grant
// lists and none may change.
const builtinRole = "admin"

// AccessControl is a cluster's Access and what each role is granted:
// everything about access but the passwords, which Milvus never reveals.
type AccessControl struct {
	Access
	Grants []Grant
}

// AccessControl reads the cluster's Access and its roles' grants in every
// database.
func (c *Conn) AccessControl(ctx context.Context) (AccessControl, error) {
	a, err := c.Access(ctx)
	ac := AccessControl{Access: a}
	if err != nil {
		return ac, err
	}
	dbs, err := c.Databases(ctx)
	if err != nil {
		return ac, err
	}
	for _, role := range a.Roles {
		if role == builtinRole {
			continue
		}
		for _, db := range dbs {
			g, err := c.Svc.SelectGrant(c.In(ctx, db), &milvuspb.SelectGrantRequest{
				Entity: &milvuspb.GrantEntity{Role: &milvuspb.RoleEntity{Name: role}, DbName: db}})
			if err := Check("list the grants of role "+role, g.GetStatus(), err); err != nil {
				return ac, err
			}
			for _, e := range g.GetEntities() {
				gr := Grant{Role: role, Object: e.GetObject().GetName(), ObjectName: e.GetObjectName(),
					Privilege: e.GetGrantor().GetPrivilege().GetName(), Database: e.GetDbName()}
				if gr.Database == "" {
					gr.Database = db
				}
				if !slices.Contains(ac.Grants, gr) {
					ac.Grants = append(ac.Grants, gr)
				}
			}
		}
	}
	return ac, nil
}

// CreateRole creates a role; one already there is fine.
func (c *Conn) CreateRole(ctx context.Context, role string) error {
	r, err := c.Svc.SelectRole(c.In(ctx, ""), &milvuspb.SelectRoleRequest{Role: &milvuspb.RoleEntity{Name: role}})
	if err == nil && StatusOK(r.GetStatus()) && len(r.GetResults()) > 0 {
		return nil
	}
	s, err := c.Svc.CreateRole(c.In(ctx, ""), &milvuspb.CreateRoleRequest{Entity: &milvuspb.RoleEntity{Name: role}})
	return Check("create role "+role, s, err)
}

// GrantPrivilege grants g; granted already is fine.
func (c *Conn) GrantPrivilege(ctx context.Context, g Grant) error {
	s, err := c.Svc.OperatePrivilege(c.In(ctx, g.Database), &milvuspb.OperatePrivilegeRequest{Type: milvuspb.OperatePrivilegeType_Grant,
		Entity: &milvuspb.GrantEntity{Role: &milvuspb.RoleEntity{Name: g.Role}, Object: &milvuspb.ObjectEntity{Name: g.Object},
			ObjectName: g.ObjectName, DbName: g.Database, Grantor: &milvuspb.GrantorEntity{Privilege: &milvuspb.PrivilegeEntity{Name: g.Privilege}}}})
	return Check(fmt.Sprintf("grant %s on %s %s of database %s to role %s", g.Privilege, g.Object, g.ObjectName, g.Database, g.Role), s, err)
}

// AddUserToRole gives user role; held already is fine.
func (c *Conn) AddUserToRole(ctx context.Context, user, role string) error {
	roles, err := c.RolesOf(ctx, user)
	if err != nil || slices.Contains(roles, role) {
		return err
	}
	s, err := c.Svc.OperateUserRole(c.In(ctx, ""), &milvuspb.OperateUserRoleRequest{Username: user, RoleName: role,
		Type: milvuspb.OperateUserRoleType_AddUserToRole})
	return Check("give user "+user+" role "+role, s, err)
}

// RolesOf lists the roles a user holds.
func (c *Conn) RolesOf(ctx context.Context, user string) ([]string, error) {
	r, err := c.Svc.SelectUser(c.In(ctx, ""), &milvuspb.SelectUserRequest{User: &milvuspb.UserEntity{Name: user}, IncludeRoleInfo: true})
	if err := Check("list the roles of user "+user, r.GetStatus(), err); err != nil {
		return nil, err
	}
	var roles []string
	for _, res := range r.GetResults() {
		for _, role := range res.GetRoles() {
			roles = append(roles, role.GetName())
		}
	}
	return roles, nil
}

// CopyAccess gives to, whose access control is got, what it lacks of
// have: the roles, their grants, and the roles of the users both have
// (a cluster that does not check access refuses any grant, even one it
// has, so only what is missing is asked for). A user to lacks is left
// out: Milvus never reveals a password, so zdm cannot make one.
func CopyAccess(ctx context.Context, to *Conn, have, got AccessControl) error {
	for _, role := range have.Roles {
		if slices.Contains(got.Roles, role) {
			continue
		}
		if err := to.CreateRole(ctx, role); err != nil {
			return err
		}
	}
	for _, g := range have.Grants {
		if slices.Contains(got.Grants, g) {
			continue
		}
		if err := to.GrantPrivilege(ctx, g); err != nil {
			return err
		}
	}
	for _, user := range slices.Sorted(maps.Keys(have.UserRoles)) {
		if !slices.Contains(got.Users, user) {
			continue
		}
		for _, role := range have.UserRoles[user] {
			if slices.Contains(got.UserRoles[user], role) {
				continue
			}
			if err := to.AddUserToRole(ctx, user, role); err != nil {
				return err
			}
		}
	}
	return nil
}
