package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/projections"
)

// clusterStatuses are the statuses a listed cluster can have.
var clusterStatuses = []string{domain.StatusRunning, domain.StatusLocked, domain.StatusSyncing, domain.StatusMigrated}

// listClusters lists the clusters the caller may see, newest first:
// ?organization, ?project, ?status=S[,S…] (in any case), ?spare=true|false,
// and ?limit=N with ?after=ID to page. A registry of many tenants' clusters
// is read a project or a page at a time.
func (s *Server) listClusters(c echo.Context) error {
	q, err := query(c, "organization", "project", "status", "spare", "limit", "after")
	if err != nil {
		return err
	}
	keep, err := clusterFilter(q)
	if err != nil {
		return err
	}
	limit, err := limitOf(q, 0)
	if err != nil {
		return err
	}
	p := principal(c)
	// A cluster deleted since its page was read still marks where the
	// next page starts: it is left out of the list by keep, not visible.
	clusters := listing[*projections.ClusterView]{kind: "cluster", get: s.cfg.Clusters.Get, list: s.cfg.Clusters.List,
		created: func(v *projections.ClusterView) time.Time { return v.CreatedAt }, id: func(v *projections.ClusterView) string { return v.ID },
		visible: func(v *projections.ClusterView) bool { return p.CanView(v.Organization) }}
	views, next, err := clusters.page(q, limit, func(v *projections.ClusterView) bool { return !v.Deleted && keep(v) })
	if err != nil {
		return err
	}
	problems := s.proxyProblems()
	out := []clusterJSON{}
	for _, v := range views {
		out = append(out, toClusterJSON(v, problems))
	}
	return c.JSON(http.StatusOK, pageBody("clusters", out, next))
}

// clusterFilter reads the list's filters into one test of a view.
func clusterFilter(q map[string]string) (func(*projections.ClusterView) bool, error) {
	var statuses []string
	if v, ok := q["status"]; ok {
		for _, name := range strings.Split(v, ",") {
			i := slices.IndexFunc(clusterStatuses, func(s string) bool { return strings.EqualFold(s, strings.TrimSpace(name)) })
			if i < 0 {
				return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: "status",
					Message: fmt.Sprintf("status must be %s, comma-separated; %q is none", strings.Join(clusterStatuses, ", "), name)}
			}
			statuses = append(statuses, clusterStatuses[i])
		}
	}
	spare, bySpare := q["spare"]
	if bySpare && spare != "true" && spare != "false" {
		return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: "spare", Message: "spare must be true or false"}
	}
	org, byOrg := q["organization"]
	project, byProject := q["project"]
	return func(v *projections.ClusterView) bool {
		return (!byOrg || v.Organization == org) && (!byProject || v.Project == project) &&
			(statuses == nil || slices.Contains(statuses, v.Status)) && (!bySpare || v.Spare == (spare == "true"))
	}, nil
}
