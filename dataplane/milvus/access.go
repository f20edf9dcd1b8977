package milvus

import (
	"context"
	"slices"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
)

// Access is who may sign in to a cluster, the roles it defines, and
// which user holds which role.
type Access struct {
	Users     []string
	Roles     []string
	UserRoles map[string][]string
}

// Access lists the cluster's users and roles (sorted), and the roles of
// its users.
func (c *Conn) Access(ctx context.Context) (Access, error) {
	a := Access{UserRoles: map[string][]string{}}
	u, err := c.Svc.ListCredUsers(c.In(ctx, ""), &milvuspb.ListCredUsersRequest{})
	if err := Check("list users", u.GetStatus(), err); err != nil {
		return a, err
	}
	r, err := c.Svc.SelectRole(c.In(ctx, ""), &milvuspb.SelectRoleRequest{IncludeUserInfo: true})
	if err := Check("list roles", r.GetStatus(), err); err != nil {
		return a, err
	}
	a.Users = slices.Sorted(slices.Values(u.GetUsernames()))
	for _, res := range r.GetResults() {
		role := res.GetRole().GetName()
		a.Roles = append(a.Roles, role)
		for _, user := range res.GetUsers() {
			a.UserRoles[user.GetName()] = append(a.UserRoles[user.GetName()], role)
		}
	}
	slices.Sort(a.Roles)
	return a, nil
}

// Lacks lists what a has that other does not: the users and the roles a
// client of a would miss on other.
func (a Access) Lacks(other Access) (users, roles []string) {
	for _, u := range a.Users {
		if !slices.Contains(other.Users, u) {
			users = append(users, u)
		}
	}
	for _, r := range a.Roles {
		if !slices.Contains(other.Roles, r) {
			roles = append(roles, r)
		}
	}
	return users, roles
}
