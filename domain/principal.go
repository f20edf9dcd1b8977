package domain

import (
	"errors"
	"slices"
)

// ErrForbidden means the principal may not do what it asked (R12).
var ErrForbidden = errors.New("forbidden")

// Role is what a principal may do.
type Role string

// Roles. An admin is an organization admin of every organization; it is the
// bootstrap principal of ZDM_ADMIN_TOKEN.
const (
	RoleAdmin        Role = "admin"
	RoleOrgAdmin     Role = "org_admin"
	RoleProjectAdmin Role = "project_admin"
	RoleViewer       Role = "viewer"
	// RoleMetrics may read /metrics and nothing else: a scrape token.
	RoleMetrics Role = "metrics"
)

// Principal is an authenticated user.
type Principal struct {
	User         string   `json:"user"`
	Role         Role     `json:"role"`
	Organization string   `json:"organization,omitempty"`
	Projects     []string `json:"projects,omitempty"`
}

// CanScrape reports whether the principal may read /metrics, which names
// every organization's migrations.
func (p Principal) CanScrape() bool { return p.Role == RoleAdmin || p.Role == RoleMetrics }

// CanView reports whether the principal may read what belongs to org.
func (p Principal) CanView(org string) bool {
	return p.Role == RoleAdmin || (p.Organization != "" && p.Organization == org)
}

// CanDrive reports whether the principal may start or drive a migration,
// or manage a cluster, of project in org (R12): organization admins of org
// and admins of that project.
func (p Principal) CanDrive(org, project string) bool {
	switch p.Role {
	case RoleAdmin:
		return true
	case RoleOrgAdmin:
		return p.Organization == org
	case RoleProjectAdmin:
		return p.Organization == org && slices.Contains(p.Projects, project)
	}
	return false
}
