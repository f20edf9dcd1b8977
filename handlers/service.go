package handlers

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/retry"
)

// SystemActor is the actor of what zdm does by itself.
const SystemActor = "zdm"

// Service runs commands against migrations and clusters.
type Service struct {
	migrations *repository[*domain.Migration]
	clusters   *repository[*domain.Cluster]
	creds      CredentialStore
	dir        Directory
	clock      Clock
	logger     *slog.Logger
	provs      func() []string
	storage    StorageChecker
	listens    ListenIndex
	endpoints  EndpointIndex
	sendsEmail bool
}

// ServiceConfig holds what a Service needs.
type ServiceConfig struct {
	Log EventLog
	// Snapshots, when set, keeps folded aggregates so that a load after
	// a restart replays only the events after the last snapshot.
	Snapshots   Snapshots
	Credentials CredentialStore
	Directory   Directory
	Clock       Clock
	Logger      *slog.Logger
	// Provisioners names the provisioners this zdmd has (nil: any that
	// zdm knows is accepted).
	Provisioners func() []string
	// StoreRetry is how long a command or a read waits for an event log
	// that cannot answer for a moment (default DefaultStoreRetry).
	StoreRetry retry.Policy
	// SendsEmail: an SMTP server is configured. Without one, a migration
	// asking for emails (options.notify) is refused: they would never go.
	SendsEmail bool
}

// DefaultStoreRetry waits about ten seconds: long enough for a JetStream
// cluster that lost a node to elect new leaders (4-9 s), short enough to
// answer a client before its own timeout.
func DefaultStoreRetry() retry.Policy {
	return retry.Policy{Attempts: 8, First: 200 * time.Millisecond, Max: 2 * time.Second}
}

// NewService returns a Service.
func NewService(cfg ServiceConfig) *Service {
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Directory == nil {
		cfg.Directory = OpenDirectory{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.StoreRetry = cfg.StoreRetry.Or(DefaultStoreRetry())
	return &Service{
		migrations: newRepository(cfg.Log, cfg.Snapshots, cfg.Clock, cfg.StoreRetry, domain.MigrationStream, domain.NewMigration),
		clusters:   newRepository(cfg.Log, cfg.Snapshots, cfg.Clock, cfg.StoreRetry, domain.ClusterStream, func() *domain.Cluster { return &domain.Cluster{} }),
		creds:      cfg.Credentials,
		dir:        cfg.Directory,
		clock:      cfg.Clock,
		logger:     cfg.Logger,
		provs:      cfg.Provisioners,
		sendsEmail: cfg.SendsEmail,
	}
}

// Migration returns the current aggregate of a migration.
func (s *Service) Migration(ctx context.Context, id string) (*domain.Migration, error) {
	return s.migrations.Get(ctx, id)
}

// Cluster returns the current aggregate of a cluster.
func (s *Service) Cluster(ctx context.Context, id string) (*domain.Cluster, error) {
	c, err := s.clusters.Get(ctx, id)
	if err == nil && c.Deleted {
		err = fmt.Errorf("%w: cluster %s", domain.ErrNotFound, id)
	}
	return c, err
}

// ClusterCredentials returns a cluster's credentials for the data plane.
func (s *Service) ClusterCredentials(ctx context.Context, id string) (domain.Credentials, error) {
	if s.creds == nil {
		return domain.Credentials{}, nil
	}
	return s.creds.Get(ctx, id)
}

// exec runs a domain command on a migration. A saga's command (its
// context carries a lease term, WithDriver) is refused with
// domain.ErrFenced unless that term drives the migration: the check and
// the append see the same version of it, so a stale driver cannot append.
func (s *Service) exec(ctx context.Context, id, commandID, actor string, cmd domain.Command) (*domain.Migration, error) {
	d, driven := ctx.Value(driverKey{}).(domain.DriverChanged)
	return s.migrations.Exec(ctx, id, commandID, actor, func(m *domain.Migration) ([]domain.Event, error) {
		if m.Seq() == 0 {
			if _, isRequest := cmd.(domain.RequestMigration); !isRequest {
				return nil, fmt.Errorf("%w: migration %s", domain.ErrNotFound, id)
			}
		}
		if _, taking := cmd.(domain.TakeDriving); driven && !taking && !domain.IsTerminal(m.State) && m.Driver.Term != d.Term {
			return nil, fmt.Errorf("%w: %s (term %d), not %s (term %d)", domain.ErrFenced, m.Driver.Instance, m.Driver.Term, d.Instance, d.Term)
		}
		return domain.Decide(m, cmd)
	})
}

type driverKey struct{}

// WithDriver marks ctx as a saga's of the given lease term: commands run
// with it are fenced (see exec).
func WithDriver(ctx context.Context, instance string, term uint64) context.Context {
	return context.WithValue(ctx, driverKey{}, domain.DriverChanged{Instance: instance, Term: term})
}

// Record runs a command of zdm's own (a saga step) on a migration.
func (s *Service) Record(ctx context.Context, id, commandID string, cmd domain.Command) (*domain.Migration, error) {
	return s.exec(ctx, id, commandID, SystemActor, cmd)
}

// newID returns prefix followed by 16 random hex digits.
func newID(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// CommandID returns the command ID of a client's idempotency key (already
// scoped to the client and the request), else a fresh one.
func CommandID(key string) string {
	if key != "" {
		return "api-" + key
	}
	return newID("cmd-")
}

// idFor names the aggregate a command creates: a command a client may
// retry (keyed: one with its idempotency key) names the same one every
// time, so that a retry run again finds what the first try created.
func idFor(prefix, commandID string) (id string, keyed bool) {
	if !strings.HasPrefix(commandID, "api-") {
		return newID(prefix), false
	}
	sum := sha256.Sum256([]byte(commandID))
	return prefix + hex.EncodeToString(sum[:8]), true
}

// isNotFound reports a missing aggregate.
func isNotFound(err error) bool { return errors.Is(err, domain.ErrNotFound) }
