package domain

import "testing"

func TestR12OnlyAdminsDrive(t *testing.T) {
	tests := []struct {
		name       string
		p          Principal
		org, proj  string
		view, move bool
	}{
		{"bootstrap admin", Principal{Role: RoleAdmin}, "acme", "search", true, true},
		{"org admin of the org", Principal{Role: RoleOrgAdmin, Organization: "acme"}, "acme", "search", true, true},
		{"org admin of another org", Principal{Role: RoleOrgAdmin, Organization: "globex"}, "acme", "search", false, false},
		{"project admin of the project", Principal{Role: RoleProjectAdmin, Organization: "acme", Projects: []string{"search"}}, "acme", "search", true, true},
		{"project admin of another project", Principal{Role: RoleProjectAdmin, Organization: "acme", Projects: []string{"ads"}}, "acme", "search", true, false},
		{"project admin, same project name elsewhere", Principal{Role: RoleProjectAdmin, Organization: "globex", Projects: []string{"search"}}, "acme", "search", false, false},
		{"viewer", Principal{Role: RoleViewer, Organization: "acme"}, "acme", "search", true, false},
		{"no role", Principal{Organization: "acme"}, "acme", "search", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.CanView(tt.org); got != tt.view {
				t.Errorf("CanView = %v", got)
			}
			if got := tt.p.CanDrive(tt.org, tt.proj); got != tt.move {
				t.Errorf("CanDrive = %v", got)
			}
		})
	}
}

func TestValidIDKeepsSubjectsApart(t *testing.T) {
	for _, id := range []string{"", "a.b", "*", ">", "a b", "x\n", string(make([]byte, 200))} {
		if ValidID(id) {
			t.Errorf("%q accepted", id)
		}
		if _, err := MigrationStream(id); err == nil {
			t.Errorf("%q made a subject", id)
		}
	}
	if s, err := MigrationStream("m-1a_B"); err != nil || s != "zdm.events.migration.m-1a_B" {
		t.Fatalf("%s %v", s, err)
	}
}
