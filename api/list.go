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

// listMigrations lists the migrations the caller may see, newest first:
// ?state=S[,S…] (a state, running or ended), ?source_cluster_id=ID,
// ?view=summary (without the per-collection progress, the lag series,
// the verifications, the preflight, the emails and the notes, which a
// list of many large migrations would repeat on every refresh), and
// ?limit=N with ?after=ID to page.
func (s *Server) listMigrations(c echo.Context) error {
	q, err := query(c, "state", "source_cluster_id", "view", "limit", "after")
	if err != nil {
		return err
	}
	keepState, err := stateFilter(q)
	if err != nil {
		return err
	}
	summary := false
	switch v, ok := q["view"]; {
	case !ok || v == "full":
	case v == "summary":
		summary = true
	default:
		return &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: "view", Message: "view must be full or summary"}
	}
	limit, err := limitOf(q, 0)
	if err != nil {
		return err
	}
	p := principal(c)
	var cursor *projections.MigrationView
	if id, ok := q["after"]; ok {
		v, found := s.cfg.Migrations.Get(id)
		if !found || !p.CanView(v.Organization) {
			return &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: "after", Message: fmt.Sprintf("after must be the id of a migration you can see (%q is none)", id)}
		}
		cursor = v
	}
	order := newer(migrationCreated, migrationID)
	all := s.cfg.Migrations.List()
	slices.SortFunc(all, order)
	out := []any{}
	more, last := false, ""
	for _, v := range all {
		if !p.CanView(v.Organization) || (cursor != nil && order(v, cursor) <= 0) || !keepState(v.State) {
			continue
		}
		if id, ok := q["source_cluster_id"]; ok && v.SourceClusterID != id {
			continue
		}
		if limit > 0 && len(out) == limit {
			more = true
			break
		}
		s.live(v)
		last = v.ID
		if summary {
			out = append(out, summarize(v))
		} else {
			out = append(out, v)
		}
	}
	body := map[string]any{"migrations": out, "more": more}
	if more {
		body["next_after"] = last
	}
	return c.JSON(http.StatusOK, body)
}

func migrationCreated(v *projections.MigrationView) time.Time { return v.CreatedAt }
func migrationID(v *projections.MigrationView) string         { return v.ID }

// stateFilter reads ?state: states, or running (not ended) and ended.
func stateFilter(q map[string]string) (func(domain.State) bool, error) {
	v, ok := q["state"]
	if !ok {
		return func(domain.State) bool { return true }, nil
	}
	running, ended := false, false
	var states []domain.State
	for _, name := range strings.Split(v, ",") {
		switch name = strings.TrimSpace(name); {
		case name == "running":
			running = true
		case name == "ended":
			ended = true
		case slices.Contains(domain.States(), domain.State(name)):
			states = append(states, domain.State(name))
		default:
			names := make([]string, 0, len(domain.States()))
			for _, st := range domain.States() {
				names = append(names, string(st))
			}
			return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: "state",
				Message: fmt.Sprintf("state must be running, ended or a migration state (%s), comma-separated; %q is none", strings.Join(names, ", "), name)}
		}
	}
	return func(st domain.State) bool {
		return slices.Contains(states, st) || (running && !domain.IsTerminal(st)) || (ended && domain.IsTerminal(st))
	}, nil
}

// migrationSummary is a migration's view without what grows with its
// collections and its history: the fields it shadows are left out.
type migrationSummary struct {
	*projections.MigrationView
	Progress      progressSummary `json:"progress"`
	LagHistory    *struct{}       `json:"lag_history,omitempty"`
	Verification  *struct{}       `json:"verification,omitempty"`
	Preflight     *struct{}       `json:"preflight,omitempty"`
	Notifications *struct{}       `json:"notifications,omitempty"`
	Notes         *struct{}       `json:"notes,omitempty"`
}

type progressSummary struct {
	projections.Progress
	Collections *struct{} `json:"collections,omitempty"`
}

func summarize(v *projections.MigrationView) migrationSummary {
	return migrationSummary{MigrationView: v, Progress: progressSummary{Progress: v.Progress}}
}
