package milvus

import (
	"slices"
	"testing"
)

func TestAccessLacksNamesWhatTheOtherClusterHasNot(t *testing.T) {
	src := Access{Users: []string{"app", "root"}, Roles: []string{"admin", "public", "reader"}}
	users, roles := src.Lacks(Access{Users: []string{"root"}, Roles: []string{"admin", "public"}})
	if !slices.Equal(users, []string{"app"}) || !slices.Equal(roles, []string{"reader"}) {
		t.Errorf("lacks users %v, roles %v", users, roles)
	}
	if users, roles := src.Lacks(src); users != nil || roles != nil {
		t.Errorf("a cluster lacks %v %v of itself", users, roles)
	}
}
