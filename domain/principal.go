package domain

import (
	"errors"
	"fmt"
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

// Authorize checks that the principal may drive what belongs to
// org/project (R12), and says why not.
func (p Principal) Authorize(org, project string) error {
	if !p.CanDrive(org, project) {
		if !p.CanView(org) {
			return fmt.Errorf("%w: %s may not act in organization %s", ErrForbidden, p.User, org)
		}
		return fmt.Errorf("%w: %s (%s) may not drive migrations of %s/%s; an organization or project admin must",
			ErrForbidden, p.User, p.Role, org, project)
	}
	return nil
}

// AuthorizeOn is Authorize for an aggregate that exists: to a principal
// who may not see its organization it does not, so that ids of other
// tenants cannot be told from ids never issued.
func (p Principal) AuthorizeOn(kind, id, org, project string) error {
	if !p.CanView(org) {
		return fmt.Errorf("%w: %s %s", ErrNotFound, kind, id)
	}
	return p.Authorize(org, project)
}

// MayReadAny says whether the principal's role reads any organization's
// clusters and migrations: a scrape token reads /metrics only, and is
// told so rather than shown empty lists.
func (p Principal) MayReadAny() error {
	if p.Role == RoleMetrics {
		return fmt.Errorf("%w: %s (%s) may read /metrics only; a viewer or an admin of an organization may read its clusters and migrations",
			ErrForbidden, p.User, p.Role)
	}
	return nil
}

// MayDriveAny says whether the principal's role drives anything at all:
// viewers and scrape tokens are refused a command before it is read.
func (p Principal) MayDriveAny() error {
	switch p.Role {
	case RoleAdmin, RoleOrgAdmin, RoleProjectAdmin:
		return nil
	}
	return fmt.Errorf("%w: %s (%s) may not change anything; an organization or project admin must", ErrForbidden, p.User, p.Role)
}
