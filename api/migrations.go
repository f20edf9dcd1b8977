package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/handlers"
	"github.com/zdm-io/zdm/projections"
)

type migrationRequest struct {
	SourceClusterID string `json:"source_cluster_id"`
	Target          struct {
		Name         string `json:"name"`
		Project      string `json:"project"`
		Organization string `json:"organization"`
		Provisioner  string `json:"provisioner"`
	} `json:"target"`
	Options struct {
		// A pointer: 0 given is refused, where leaving it out means 10.
		LagThresholdSeconds *float64 `json:"lag_threshold_seconds"`
		SyncTimeLimit       string   `json:"sync_time_limit"`
		OnForbiddenOp       string   `json:"on_forbidden_op"`
		Notify              []string `json:"notify"`
		AutoID              string   `json:"auto_id"`
		CopyRateLimit       int64    `json:"copy_rate_limit"`
		CopyMode            string   `json:"copy_mode"`
	} `json:"options"`
}

func (r migrationRequest) command() (handlers.StartMigration, error) {
	cmd := handlers.StartMigration{
		SourceClusterID: r.SourceClusterID,
		Target:          domain.TargetSpec(r.Target),
		Options: domain.Options{
			OnForbiddenOp: r.Options.OnForbiddenOp, Notify: r.Options.Notify,
			AutoID: r.Options.AutoID, CopyRateLimit: r.Options.CopyRateLimit, CopyMode: r.Options.CopyMode,
		},
	}
	if v := r.Options.LagThresholdSeconds; v != nil {
		// A threshold of 0 would never let the switch go: the lag is
		// never under it.
		if *v <= 0 {
			return cmd, domain.FieldError("options.lag_threshold_seconds", domain.LagThresholdRange)
		}
		cmd.Options.LagThresholdSeconds = *v
	}
	if r.Options.SyncTimeLimit != "" {
		var d domain.Duration
		if err := d.UnmarshalText([]byte(r.Options.SyncTimeLimit)); err != nil || d <= 0 {
			return cmd, domain.FieldError("options.sync_time_limit", `must be a positive duration such as "168h" or "7d"`)
		}
		cmd.Options.SyncTimeLimit = d
	}
	return cmd, nil
}

func (s *Server) startMigration(c echo.Context) error {
	var req migrationRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	cmd, err := req.command()
	if err != nil {
		return err
	}
	m, err := s.cfg.Commands.StartMigration(c.Request().Context(), principal(c), commandID(c), cmd)
	if err != nil {
		return err
	}
	return s.migrationAfter(c, http.StatusAccepted, m)
}

// migrationAfter answers a command with the migration as the projection
// shows it once the command is applied.
func (s *Server) migrationAfter(c echo.Context, status int, m *domain.Migration) error {
	waitView(c, s.cfg.Migrations, m.ID, m.Seq())
	v, ok := s.cfg.Migrations.Get(m.ID)
	if !ok {
		return c.JSON(status, map[string]any{"id": m.ID, "state": m.State})
	}
	s.live(v)
	return c.JSON(status, v)
}

func (s *Server) visibleMigration(c echo.Context) (*projections.MigrationView, error) {
	v, ok := s.cfg.Migrations.Get(c.Param("id"))
	if !ok {
		v, ok = awaitStored[*projections.MigrationView](c, s.cfg.History, s.cfg.Migrations, domain.MigrationStream)
	}
	// Another organization's migration is answered as one that does not
	// exist: its id tells nothing.
	if !ok || !principal(c).CanView(v.Organization) {
		return nil, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no migration " + c.Param("id")}
	}
	return v, nil
}

// migrationScope is the organization and project of the migration a
// request names (see drivable).
func (s *Server) migrationScope(c echo.Context) (org, project string, err error) {
	v, err := s.visibleMigration(c)
	if err != nil {
		return "", "", err
	}
	return v.Organization, v.Source.Project, nil
}

// live shows the per-second lag series over the history's samples, and
// the copy's rates as of now.
func (s *Server) live(v *projections.MigrationView) {
	if s.cfg.Lag != nil {
		s.cfg.Lag.Overlay(v)
	}
	v.RatesAt(time.Now())
}

func (s *Server) getMigration(c echo.Context) error {
	v, err := s.visibleMigration(c)
	if err != nil {
		return err
	}
	s.live(v)
	return c.JSON(http.StatusOK, v)
}

type eventJSON struct {
	Seq   uint64          `json:"seq"`
	At    time.Time       `json:"at"`
	Actor string          `json:"actor"`
	Type  string          `json:"type"`
	Data  json.RawMessage `json:"data"`
}

// query returns the query's parameters, each given once, refusing one
// the route does not take: a misspelt limit would otherwise page by the
// default and say nothing.
func query(c echo.Context, names ...string) (map[string]string, error) {
	// Echo drops the pairs it cannot decode; a parameter lost so would
	// leave a filter or an option unapplied in silence.
	if _, err := url.ParseQuery(c.Request().URL.RawQuery); err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Code: "malformed_query", Field: "query", Message: "the query string is malformed: " + err.Error()}
	}
	out := map[string]string{}
	for name, vs := range c.QueryParams() {
		if !slices.Contains(names, name) {
			takes := "it takes " + strings.Join(names, ", ")
			if len(names) == 0 {
				takes = "it takes none"
			}
			return nil, &Error{Status: http.StatusBadRequest, Code: "unknown_field", Field: name,
				Message: fmt.Sprintf("%s is not a parameter of this route (%s)", name, takes)}
		}
		if len(vs) > 1 {
			return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: name, Message: name + " must be given once"}
		}
		if vs[0] == "" {
			// An empty filter would list nothing, as if nothing matched.
			return nil, &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: name, Message: name + " must not be empty"}
		}
		out[name] = vs[0]
	}
	return out, nil
}

// noQuery refuses a query parameter on a route that takes none, before
// anything is done or recorded: a command's misspelt option would
// otherwise be carried out without it, and a filter on a list that has
// none would be ignored in silence.
func noQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().URL.RawQuery != "" {
			if _, err := query(c); err != nil {
				return err
			}
		}
		return next(c)
	}
}

// limitOf reads ?limit, a page's size from 1 to 1000 (dflt when absent).
func limitOf(q map[string]string, dflt int) (int, error) {
	v, ok := q["limit"]
	if !ok {
		return dflt, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: "limit", Message: "limit must be from 1 to 1000"}
	}
	return n, nil
}

// migrationEvents pages through the audit history:
// ?after=SEQ&limit=N[&steps=true]. A page reads the N stored batches
// (one command's events each, never split) after SEQ and no more, so it
// costs the same wherever it starts. steps=true leaves the periodic lag
// samples out; the page then may hold fewer than N events, or none, and
// the client goes on from next_after while more is true.
func (s *Server) migrationEvents(c echo.Context) error {
	if _, err := s.visibleMigration(c); err != nil {
		return err
	}
	q, err := query(c, "after", "limit", "steps")
	if err != nil {
		return err
	}
	after := uint64(0)
	if v, ok := q["after"]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: "after", Message: "after must be a sequence number (0 or more)"}
		}
		after = uint64(n)
	}
	limit, err := limitOf(q, 100)
	if err != nil {
		return err
	}
	var keep func(domain.Event) bool
	switch v, ok := q["steps"]; {
	case !ok || v == "false":
	case v == "true":
		keep = domain.IsStep
	default:
		return &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: "steps", Message: "steps must be true or false"}
	}
	subj, err := domain.MigrationStream(c.Param("id"))
	if err != nil {
		return err
	}
	recs, next, more, err := s.cfg.History.Page(c.Request().Context(), subj, after, limit, keep)
	if err != nil {
		return err
	}
	out := make([]eventJSON, 0, len(recs))
	for _, r := range recs {
		data, _ := json.Marshal(r.Event)
		out = append(out, eventJSON{Seq: r.Seq, At: r.At, Actor: r.Actor, Type: r.Event.EventType(), Data: data})
	}
	return c.JSON(http.StatusOK, map[string]any{"events": out, "next_after": next, "more": more})
}

type stopSyncRequest struct {
	ConfirmWritesStopped *bool `json:"confirm_writes_stopped"`
	Force                bool  `json:"force"`
}

func (s *Server) stopSync(c echo.Context) error {
	var req stopSyncRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.ConfirmWritesStopped == nil || !*req.ConfirmWritesStopped {
		return &Error{Status: http.StatusBadRequest, Code: "confirmation_required", Field: "confirm_writes_stopped",
			Message: "confirm_writes_stopped must be true: stop writing to the source cluster first"}
	}
	m, err := s.cfg.Commands.StopSync(c.Request().Context(), principal(c), commandID(c), c.Param("id"),
		handlers.StopSync{ConfirmWritesStopped: true, Force: req.Force})
	if err != nil {
		return err
	}
	return s.migrationAfter(c, http.StatusAccepted, m)
}

// migrationPatch is what a running migration lets an operator change.
type migrationPatch struct {
	Options *struct {
		CopyRateLimit *int64 `json:"copy_rate_limit"`
	} `json:"options"`
}

func (s *Server) updateMigration(c echo.Context) error {
	var req migrationPatch
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Options == nil || req.Options.CopyRateLimit == nil {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_field", Field: "options.copy_rate_limit",
			Message: "options.copy_rate_limit is required: it is the one option a running migration can change"}
	}
	m, err := s.cfg.Commands.SetCopyRateLimit(c.Request().Context(), principal(c), commandID(c), c.Param("id"), *req.Options.CopyRateLimit)
	if err != nil {
		return err
	}
	return s.migrationAfter(c, http.StatusOK, m)
}

func (s *Server) cancelMigration(c echo.Context) error {
	m, err := s.cfg.Commands.CancelMigration(c.Request().Context(), principal(c), commandID(c), c.Param("id"))
	if err != nil {
		return err
	}
	return s.migrationAfter(c, http.StatusAccepted, m)
}
