// Package service wires zdm's parts into the running zdmd: NATS and the
// event store, projections, the saga, the data plane and the API.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zdm-io/zdm/adapters/email"
	"github.com/zdm-io/zdm/adapters/secrets"
	"github.com/zdm-io/zdm/api"
	"github.com/zdm-io/zdm/console"
	"github.com/zdm-io/zdm/dataplane/milvus/linger"
	"github.com/zdm-io/zdm/dataplane/simulated"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/handlers"
	"github.com/zdm-io/zdm/metrics"
	"github.com/zdm-io/zdm/projections"
)

// Durable consumer names; deleting one rebuilds what it feeds.
const (
	consumerMigrationsView = "view-migrations"
	consumerClustersView   = "view-clusters"
	consumerSaga           = "saga"
	consumerNotify         = "notify"
)

// Main is zdmd serve, wired by hand.
type Main struct {
	cfg    Config
	logger *slog.Logger

	embedded *eventstore.Embedded
	nc       *nats.Conn
	store    *eventstore.Store
	// journalNC carries the capture journal (see eventstore.Store.OpenJournalOn).
	journalNC *nats.Conn

	migrations *projections.Projection[*projections.MigrationView]
	lag        *projections.LagSeries
	clusters   *projections.Projection[*projections.ClusterView]
	// ended marks the migrations a term's start need not go over.
	ended   endedMarks
	service *handlers.Service
	// sealer seals the passwords the capture journals.
	sealer   *secrets.Store
	server   *api.Server
	metrics  *metrics.Metrics
	notifier *handlers.Notifier

	// baseCtx bounds what lives as long as the process.
	baseCtx context.Context
	// plane builds each term's data plane (see leadLoop).
	plane newPlane
	// provisioners names the data plane's provisioners, sorted.
	provisioners []string
	// helpCopy, when set, helps the copies another instance drives.
	helpCopy func(context.Context)

	// importRelay carries the calls about imports (nil: direct).
	importRelay *linger.Process

	instance string
	lease    *eventstore.Lease
	// endpoints are the clusters' Milvus endpoints (Milvus data plane).
	endpoints     *endpoints
	endpointsDone chan struct{}
	// driving is the saga lease's holder, for the endpoints' relays.
	driving  *driverView
	leading  atomic.Bool
	leadDone chan struct{}
	helpDone chan struct{}

	mu      sync.Mutex
	subs    []*eventstore.Subscription
	ready   bool
	running bool // Run started the lead loop
}

// NewMain connects everything; Run starts it.
func NewMain(ctx context.Context, cfg Config, adminToken string, logger *slog.Logger) (*Main, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Main{cfg: cfg, logger: logger, baseCtx: ctx, instance: cfg.instance(), leadDone: make(chan struct{}), helpDone: make(chan struct{}),
		endpointsDone: make(chan struct{})}
	tokens, err := cfg.tokens(adminToken)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(tokens) == 0 {
		logger.Warn("no API tokens configured: set ZDM_ADMIN_TOKEN or tokens in --config; every /v1 request will be refused")
	}
	listen := cfg.NATSListen
	if m.embedded, m.nc, m.store, err = OpenEvents(ctx, cfg, listen); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	js := m.store
	migBucket, err := js.KV(ctx, m.own("ZDM_VIEW_MIGRATIONS"))
	if err != nil {
		return nil, err
	}
	clBucket, err := js.KV(ctx, m.own("ZDM_VIEW_CLUSTERS"))
	if err != nil {
		return nil, err
	}
	answerBucket, err := js.ExpiringKV(ctx, "ZDM_API_ANSWERS", api.IdempotencyWindow)
	if err != nil {
		return nil, err
	}
	secretBucket, err := js.KV(ctx, "ZDM_SECRETS")
	if err != nil {
		return nil, err
	}
	key, err := secrets.LoadKey(os.Getenv("ZDM_SECRET_KEY"), filepath.Join(cfg.DataDir, "secret.key"))
	if err != nil {
		return nil, err
	}
	creds, err := secrets.New(secretBucket, key, eventstore.ErrKeyNotFound)
	if err != nil {
		return nil, err
	}
	// A cluster electing its leaders answers nothing for seconds; the
	// check waits for it as commands do.
	if err := handlers.UntilStored(ctx, cfg.storeRetry(), func() error { return creds.CheckKey(ctx) }); err != nil {
		return nil, err
	}
	lagBucket, err := js.KV(ctx, "ZDM_LAG")
	if err != nil {
		return nil, err
	}
	m.migrations = projections.NewMigrations(migBucket)
	m.lag = projections.NewLagSeries(lagBucket, logger)
	if err := m.lag.Load(ctx); err != nil {
		return nil, err
	}
	m.clusters = projections.NewClusters(clBucket)
	states := []string{}
	for _, st := range domain.States() {
		states = append(states, string(st))
	}
	m.metrics = metrics.New(states, m.statesCount, m.copyProgress)
	snapshots, err := js.KV(ctx, "ZDM_SNAPSHOTS")
	if err != nil {
		return nil, err
	}
	endedKV, err := js.KV(ctx, endedBucket)
	if err != nil {
		return nil, err
	}
	m.ended = endedMarks{endedKV}
	m.sealer = creds
	m.service = handlers.NewService(handlers.ServiceConfig{
		Log: m.store, Snapshots: snapshots, Credentials: creds, Directory: cfg.directory(), Logger: logger,
		Provisioners: func() []string { return m.provisioners }, StoreRetry: cfg.storeRetry(), SendsEmail: cfg.SMTP.Host != "",
	})
	m.service.CheckClustersWith(clusterIndex{m})
	if m.lease, err = m.store.Lease(ctx, sagaLease, m.instance, cfg.leaseTTL(), logger.With("part", "lease")); err != nil {
		return nil, err
	}
	m.driving = &driverView{read: m.lease.Holder, fresh: 200 * time.Millisecond}
	provisioners, err := m.dataPlane()
	if err != nil {
		return nil, err
	}
	m.provisioners = provisioners
	if cfg.SMTP.Host != "" {
		sender, err := email.NewSender(cfg.SMTP)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		m.notifier = handlers.NewNotifier(m.service, sender, cfg.SMTP.Recipients, func() []string {
			var ids []string
			for _, v := range m.migrations.List() {
				if v.State == domain.StateSyncing {
					ids = append(ids, v.ID)
				}
			}
			return ids
		})
	}
	apiCfg := api.Config{
		Commands: m.service, Migrations: m.migrations, Lag: m.lag, Clusters: m.clusters, History: m.store,
		Tokens: tokens, Logger: logger, Metrics: m.metrics.Handler(), Ready: m.readyErr, Answers: answers{answerBucket},
		Provisioners:  m.provisioners,
		Instance:      func() (string, bool) { return m.instance, m.leading.Load() },
		ProxyProblems: m.proxyProblems,
	}
	if !cfg.DisableConsole {
		apiCfg.Console = console.New()
	}
	m.server = api.NewServer(apiCfg)
	ok = true
	return m, nil
}

// dataPlane sets m.plane to the configured data plane and returns its
// provisioners' names, sorted.
func (m *Main) dataPlane() ([]string, error) {
	switch m.cfg.DataPlane {
	case "simulated":
		s := m.cfg.Simulated
		steps := handlers.StepsOf(domain.ProvisionerSimulated, simulated.New(simulated.Config{
			StepLog: s.StepLog, Collections: s.Collections, RangesPerCollection: s.RangesPerCollection,
			RowsPerRange: s.RowsPerRange, RangeDelay: s.RangeDelay, LagStart: s.LagStart, LagStep: s.LagStep,
		}))
		m.plane = func(context.Context, context.Context) (termPlane, error) {
			return termPlane{steps: steps, wait: func() {}}, nil
		}
		return slices.Sorted(maps.Keys(steps.Provisioners)), nil
	case "milvus":
		return milvusPlane(m)
	}
	return nil, fmt.Errorf("--dataplane: %q is not milvus or simulated", m.cfg.DataPlane)
}

func (m *Main) statesCount() map[string]int {
	out := map[string]int{}
	for _, v := range m.migrations.List() {
		out[string(v.State)]++
	}
	return out
}

func (m *Main) copyProgress() map[string]metrics.Progress {
	out := map[string]metrics.Progress{}
	for _, v := range m.migrations.List() {
		if !domain.IsTerminal(v.State) {
			out[v.ID] = metrics.Progress{Copied: v.Progress.RowsCopied, Total: v.Progress.RowsTotal}
		}
	}
	return out
}

// own names a consumer or bucket of this instance's own: every instance
// keeps its views, fed by consumers of its own.
func (m *Main) own(name string) string { return name + "_" + m.instance }

// Routes lists "METHOD path" of every route the API serves.
func (m *Main) Routes() []string { return m.server.Routes() }

func (m *Main) readyErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.ready {
		return errors.New("starting")
	}
	if !m.nc.IsConnected() || m.journalNC != nil && !m.journalNC.IsConnected() {
		return errors.New("not connected to NATS")
	}
	return nil
}

// project starts a projection's consumer after loading its stored views.
func project[V interface {
	Load(context.Context, bool) error
	Handle(context.Context, string, []domain.Record) error
}](
	ctx context.Context, m *Main, durable, filter string, p V) error {
	exists, err := m.store.ConsumerExists(ctx, durable)
	if err != nil {
		return err
	}
	if err := p.Load(ctx, !exists); err != nil {
		return fmt.Errorf("load view %s: %w", durable, err)
	}
	sub, _, err := m.store.Consume(ctx, eventstore.ConsumeConfig{Durable: durable, Filter: filter, Logger: m.logger, Retry: m.cfg.Retry.Events}, p.Handle)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.subs = append(m.subs, sub)
	m.mu.Unlock()
	return nil
}

// Run serves on ln until ctx ends.
func (m *Main) Run(ctx context.Context, ln net.Listener) error {
	if err := project(ctx, m, m.own(consumerMigrationsView), domain.MigrationSubject+">", m.migrations); err != nil {
		return err
	}
	if err := project(ctx, m, m.own(consumerClustersView), domain.ClusterSubject+">", m.clusters); err != nil {
		return err
	}
	// Whatever ends Run ends the term too: Close waits for it.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go m.lag.Follow(ctx)
	m.mu.Lock()
	m.ready = true
	m.running = true
	m.mu.Unlock()
	go m.leadLoop(ctx)
	go m.followDriver(ctx)
	go func() {
		defer close(m.endpointsDone)
		if m.endpoints != nil {
			// Stopped after the term: calls that come while it gives its
			// own back are relayed to the instance that drives next.
			m.endpoints.run(ctx, m.leadDone)
		}
	}()
	go func() {
		defer close(m.helpDone)
		if m.helpCopy != nil {
			m.helpCopy(ctx)
		}
	}()
	m.logger.Info("zdmd serving", "instance", m.instance, "listen", ln.Addr().String(), "data_dir", m.cfg.DataDir, "nats", m.natsWhere(), "dataplane", m.cfg.DataPlane)
	errc := make(chan error, 1)
	go func() { errc <- m.server.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return m.server.Shutdown(shutdown)
}

// Store is the event store (for tests and tools).
func (m *Main) Store() *eventstore.Store { return m.store }

// Handler is the API's HTTP handler.
func (m *Main) Handler() http.Handler { return m.server.Handler() }

// Migrations is the migration status projection.
func (m *Main) Migrations() *projections.Projection[*projections.MigrationView] { return m.migrations }

// Clusters is the cluster registry projection.
func (m *Main) Clusters() *projections.Projection[*projections.ClusterView] { return m.clusters }

// Service runs commands.
func (m *Main) Service() *handlers.Service { return m.service }

// Close stops consumers and runners, then NATS.
func (m *Main) Close() {
	m.mu.Lock()
	subs := m.subs
	m.subs = nil
	m.mu.Unlock()
	for _, s := range subs {
		s.Stop()
	}
	m.mu.Lock()
	running := m.running
	m.mu.Unlock()
	if running {
		<-m.leadDone // the term stops when Run's context ends
		<-m.helpDone
		<-m.endpointsDone
	}
	for _, nc := range []*nats.Conn{m.journalNC, m.nc} {
		if nc != nil {
			_ = nc.Drain()
			nc.Close()
		}
	}
	if m.embedded != nil {
		m.embedded.Close()
	}
	if m.importRelay != nil {
		m.importRelay.Close()
	}
}
