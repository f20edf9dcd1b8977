// Package api serves zdm's HTTP API with Echo: clusters, migrations, their
// audit history, health, metrics and the OpenAPI document.
package api

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/handlers"
	"github.com/zdm-io/zdm/projections"
)

//go:embed openapi.yaml
var openAPIDocument []byte

// Commands are the handlers the API calls.
type Commands interface {
	RegisterCluster(ctx context.Context, p domain.Principal, commandID string, r handlers.RegisterCluster) (*domain.Cluster, error)
	DeleteCluster(ctx context.Context, p domain.Principal, commandID, id string) (*domain.Cluster, error)
	UpdateCluster(ctx context.Context, p domain.Principal, commandID, id string, u handlers.UpdateCluster) (*domain.Cluster, error)
	StartMigration(ctx context.Context, p domain.Principal, commandID string, r handlers.StartMigration) (*domain.Migration, error)
	StopSync(ctx context.Context, p domain.Principal, commandID, id string, r handlers.StopSync) (*domain.Migration, error)
	CancelMigration(ctx context.Context, p domain.Principal, commandID, id string) (*domain.Migration, error)
	SetCopyRateLimit(ctx context.Context, p domain.Principal, commandID, id string, rowsPerSecond int64) (*domain.Migration, error)
}

// History reads a migration's stored events a page at a time, reading
// only that page.
type History interface {
	Page(ctx context.Context, subject string, after uint64, messages int, keep func(domain.Event) bool) ([]domain.Record, uint64, bool, error)
}

// Config is what the server needs.
type Config struct {
	Commands   Commands
	Migrations *projections.Projection[*projections.MigrationView]
	// Lag, when set, shows the per-second lag in every status.
	Lag      *projections.LagSeries
	Clusters *projections.Projection[*projections.ClusterView]
	History  History
	Tokens   Tokens
	Logger   *slog.Logger
	// Metrics serves /metrics.
	Metrics http.Handler
	// Provisioners names the provisioners a migration may ask for.
	Provisioners []string
	// Answers keeps first answers for Idempotency-Key retries (nil: a
	// retry is still applied once, by its command ID, but answered anew).
	Answers Answers
	// Ready reports whether zdmd can serve (for /readyz).
	Ready func() error
	// Instance names this zdmd and says whether it drives the migrations
	// now (for /readyz: one instance of several does).
	Instance func() (name string, driving bool)
	// ProxyProblems says, by cluster, why its proxy does not serve on
	// this zdmd (for /readyz and each cluster's view).
	ProxyProblems func() map[string]string
	// Console, when set, serves the operator console at its paths.
	Console interface {
		http.Handler
		Paths() []string
	}
}

// Server is the HTTP API.
type Server struct {
	cfg  Config
	echo *echo.Echo
	srv  *http.Server
}

// NewServer builds the routes.
func NewServer(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(cfg.Logger)
	// The largest body the document allows (seven PEM fields of 65,536
	// characters, each sent as JSON escapes of up to 12 bytes) is under
	// 6 MB: a body the document bounds is read and refused by the field it
	// breaks, not as too large (413).
	e.Use(middleware.Recover(), middleware.BodyLimit("8M"), unescapeParams)
	// Made here, not in Serve: a Shutdown that comes before Serve started
	// (a stop right after the start) must still stop it.
	s := &Server{cfg: cfg, echo: e, srv: &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}}

	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", s.readyz)
	if cfg.Metrics != nil {
		// Metrics carry every tenant's migration ids, rows and lag: they
		// are served to a scrape token (role metrics) or an admin only.
		e.GET("/metrics", echo.WrapHandler(cfg.Metrics), authenticate(cfg.Tokens), requireScrape)
	}
	e.GET("/v1/openapi.yaml", func(c echo.Context) error { return c.Blob(http.StatusOK, "application/yaml", openAPIDocument) })

	if cfg.Console != nil {
		// HEAD too: a monitor that checks the page asks for no body.
		for _, p := range cfg.Console.Paths() {
			e.GET(p, echo.WrapHandler(cfg.Console))
			e.HEAD(p, echo.WrapHandler(cfg.Console))
		}
	}

	// The middleware goes on each route, not on the group: a group's
	// middleware makes Echo route every method of every /v1 path, so a
	// method a path does not take was 404 instead of 405.
	v1 := e.Group("/v1")
	// Routes that take query parameters check them themselves; the
	// others refuse any (noQuery), a command's before it is recorded.
	mw := []echo.MiddlewareFunc{authenticate(cfg.Tokens), mayRead}
	plain := []echo.MiddlewareFunc{authenticate(cfg.Tokens), mayRead, noQuery}
	// Anyone who has a token may ask whose it is.
	own := []echo.MiddlewareFunc{authenticate(cfg.Tokens), noQuery}
	command := func(idempotent echo.MiddlewareFunc) []echo.MiddlewareFunc {
		return []echo.MiddlewareFunc{authenticate(cfg.Tokens), mayCommand, noQuery, idempotent}
	}
	cmd := command(s.idempotent(nil))
	// Commands on one aggregate that carry a body are refused by who asks
	// before the body is read.
	onCluster := append(slices.Clip(cmd), drivable("cluster", s.clusterScope))
	onMigration := append(slices.Clip(cmd), drivable("migration", s.migrationScope))
	// A registration's first answer names a cluster that may be deleted
	// since.
	v1.POST("/clusters", s.registerCluster, command(s.idempotent(s.clusterDeletedSince))...)
	v1.GET("/clusters", s.listClusters, mw...)
	v1.GET("/clusters/:id", s.getCluster, plain...)
	v1.DELETE("/clusters/:id", s.deleteCluster, cmd...)
	v1.PATCH("/clusters/:id", s.updateCluster, onCluster...)
	v1.POST("/migrations", s.startMigration, cmd...)
	v1.GET("/migrations", s.listMigrations, mw...)
	v1.GET("/migrations/:id", s.getMigration, plain...)
	v1.PATCH("/migrations/:id", s.updateMigration, onMigration...)
	v1.GET("/migrations/:id/events", s.migrationEvents, mw...)
	v1.POST("/migrations/:id/stop-sync", s.stopSync, onMigration...)
	v1.POST("/migrations/:id/cancel", s.cancelMigration, cmd...)
	v1.GET("/whoami", func(c echo.Context) error { return c.JSON(http.StatusOK, principal(c)) }, own...)
	v1.GET("/provisioners", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]any{"provisioners": append([]string{}, cfg.Provisioners...)})
	}, plain...)
	return s
}

// OpenAPI is the API's OpenAPI document (api/openapi.yaml).
func OpenAPI() []byte { return append([]byte{}, openAPIDocument...) }

// Handler exposes the routes (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.echo }

// Routes lists "METHOD path" of every route, for the OpenAPI check.
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.echo.Routes() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting requests and waits for those in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}

func (s *Server) readyz(c echo.Context) error {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
		}
	}
	out := map[string]any{"status": "ready"}
	if s.cfg.Instance != nil {
		out["instance"], out["drives_migrations"] = s.cfg.Instance()
	}
	// Still ready: the API serves, and a load balancer checks each proxy
	// on its own port. A count only, as anyone may ask: which and why are
	// in the clusters' views (proxy_problem).
	if p := s.proxyProblems(); len(p) > 0 {
		out["proxies_not_serving"] = len(p)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) proxyProblems() map[string]string {
	if s.cfg.ProxyProblems == nil {
		return nil
	}
	return s.cfg.ProxyProblems()
}

// commandID takes the client's Idempotency-Key, scoped to the principal,
// the route and the aggregate, so a retried request is applied once.
func commandID(c echo.Context) string {
	return handlers.CommandID(idempotencyKey(c))
}

// waitView gives the projection a moment to show a command's result, so a
// client reads its own write.
// viewWait bounds how long a read waits for this instance's view of
// something stored but not yet projected.
const viewWait = 5 * time.Second

// awaitStored waits for the view of the migration or cluster c names
// (stream gives its subject) if its history exists: one made through
// another instance a moment ago (or through this one, whose views follow
// the store) is not answered 404. An id with no history is answered at
// once.
func awaitStored[V any](c echo.Context, history History, views interface {
	Wait(context.Context, string, uint64) error
	Get(string) (V, bool)
}, stream func(string) (string, error)) (V, bool) {
	var none V
	id := c.Param("id")
	subj, err := stream(id)
	if err != nil || history == nil {
		return none, false
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), viewWait)
	defer cancel()
	recs, _, _, err := history.Page(ctx, subj, 0, 1, nil)
	if err != nil || len(recs) == 0 || views.Wait(ctx, id, recs[0].Seq) != nil {
		return none, false
	}
	return views.Get(id)
}

func waitView[V interface {
	Wait(context.Context, string, uint64) error
}](c echo.Context, p V, id string, seq uint64) {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	_ = p.Wait(ctx, id, seq)
}

// newer compares views as operators read them, the latest at the top;
// of views made in the same instant the later ID first, so that a page
// of a list ends at one place.
func newer[V any](created func(V) time.Time, id func(V) string) func(a, b V) int {
	return func(a, b V) int {
		if c := created(b).Compare(created(a)); c != 0 {
			return c
		}
		return cmp.Compare(id(b), id(a))
	}
}

// unescapeParams decodes the path's parameters: Echo matches the path as
// sent, so a client that escapes more than it must (m%2D1 for m-1) was
// told there is no such migration, and the 404 echoed the escapes.
func unescapeParams(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		vs := slices.Clone(c.ParamValues())
		for i, v := range vs {
			// net/http answers 400 to a path that does not decode before
			// it reaches Echo.
			if u, err := url.PathUnescape(v); err == nil {
				vs[i] = u
			}
		}
		c.SetParamValues(vs...)
		return next(c)
	}
}
