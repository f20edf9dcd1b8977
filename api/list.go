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
	migrations := listing[*projections.MigrationView]{kind: "migration", get: s.cfg.Migrations.Get, list: s.cfg.Migrations.List,
		created: migrationCreated, id: migrationID, visible: func(v *projections.MigrationView) bool { return p.CanView(v.Organization) }}
	source, bySource := q["source_cluster_id"]
	views, next, err := migrations.page(q, limit, func(v *projections.MigrationView) bool {
		return keepState(v.State) && (!bySource || v.SourceClusterID == source)
	})
	if err != nil {
		return err
	}
	out := []any{}
	for _, v := range views {
		s.live(v)
		if summary {
			out = append(out, summarize(v))
		} else {
			out = append(out, v)
		}
	}
	return c.JSON(http.StatusOK, pageBody("migrations", out, next))
}

// listing is what a list of views is paged by.
type listing[V any] struct {
	kind    string // named when ?after is refused
	get     func(id string) (V, bool)
	list    func() []V
	created func(V) time.Time
	id      func(V) string
	// visible says whether the caller may see a view: listed, or named by
	// ?after.
	visible func(V) bool
}

// page is the part of the list a request asks for: the visible views
// keep accepts, newest first, after the one ?after names, at most limit
// (0: all). next is the last one's ID when others follow.
func (l listing[V]) page(q map[string]string, limit int, keep func(V) bool) (out []V, next string, err error) {
	order := newer(l.created, l.id)
	var cursor V
	id, after := q["after"]
	if after {
		v, found := l.get(id)
		if !found || !l.visible(v) {
			return nil, "", &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: "after",
				Message: fmt.Sprintf("after must be the id of a %s you can see (%q is none)", l.kind, id)}
		}
		cursor = v
	}
	all := l.list()
	slices.SortFunc(all, order)
	for _, v := range all {
		if !l.visible(v) || (after && order(v, cursor) <= 0) || !keep(v) {
			continue
		}
		if limit > 0 && len(out) == limit {
			return out, l.id(out[len(out)-1]), nil
		}
		out = append(out, v)
	}
	return out, "", nil
}

// pageBody is a list's answer: its items under name, more, and next_after
// when more follow.
func pageBody(name string, items any, next string) map[string]any {
	body := map[string]any{name: items, "more": next != ""}
	if next != "" {
		body["next_after"] = next
	}
	return body
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
