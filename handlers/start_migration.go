package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zdm-io/zdm/domain"
)

// StartMigration is the request to migrate a source cluster to a new target.
type StartMigration struct {
	SourceClusterID string
	Target          domain.TargetSpec
	Options         domain.Options
}

// Failure reasons of the lock step.
const (
	ReasonSourceBusy    = "source_busy"
	ReasonSourceDeleted = "source_deleted"
)

// StartMigration validates the request, records it and locks the source.
// Bad input changes nothing; a source that is already busy is a conflict.
func (s *Service) StartMigration(ctx context.Context, p domain.Principal, commandID string, r StartMigration) (*domain.Migration, error) {
	if r.SourceClusterID == "" {
		return nil, domain.FieldError("source_cluster_id", "is required")
	}
	src, err := s.Cluster(ctx, r.SourceClusterID)
	if err == nil && !p.CanView(src.Organization) {
		// Another tenant's cluster is, to this principal, no cluster.
		err = domain.ErrNotFound
	}
	if isNotFound(err) {
		return nil, domain.FieldError("source_cluster_id", fmt.Sprintf("names no cluster (%q)", r.SourceClusterID))
	}
	if err != nil {
		return nil, err
	}
	if err := r.Target.Validate(); err != nil {
		return nil, err
	}
	if s.provs != nil && !slices.Contains(s.provs(), r.Target.Provisioner) {
		return nil, domain.FieldError("target.provisioner",
			fmt.Sprintf("%q is not a provisioner of this zdmd, which has %s", r.Target.Provisioner, strings.Join(s.provs(), ", ")))
	}
	if err := r.Options.Validate(); err != nil {
		return nil, err
	}
	if len(r.Options.Notify) > 0 && !s.sendsEmail {
		return nil, domain.FieldError("options.notify", "cannot be sent: this zdmd has no SMTP server (smtp.host in zdmd.yaml); set one, or leave notify out")
	}
	if err := p.Authorize(src.Organization, src.Project); err != nil {
		return nil, err
	}
	targetOrg := r.Target.Organization
	if targetOrg == "" {
		targetOrg = src.Organization
	}
	if targetOrg == src.Organization {
		if err := p.Authorize(targetOrg, r.Target.Project); err != nil {
			return nil, err
		}
		if !s.dir.HasProject(targetOrg, r.Target.Project) {
			return nil, domain.FieldError("target.project", fmt.Sprintf("is not a project of organization %s", targetOrg))
		}
	}
	id, keyed := idFor("m-", commandID)
	if keyed {
		if m, err := s.migrations.Get(ctx, id); err == nil && m.Source.ID == src.ID {
			// A retry run again: the first try created the migration (and
			// locked the source for it).
			return m, nil
		}
	}
	// Refuse a busy source before anything is written; the lock below
	// settles a race between two requests.
	if _, err := src.LockFor("probe"); err != nil {
		return nil, err
	}
	if err := s.twinsFree(ctx, src); err != nil {
		return nil, err
	}
	cmd := domain.RequestMigration{
		ID: id, Actor: p.User, Target: r.Target, Options: r.Options,
		Source: domain.ClusterRef{ID: src.ID, Name: src.Name, Organization: src.Organization, Project: src.Project, Endpoint: src.Endpoint},
	}
	if _, err := s.exec(ctx, id, commandID, p.User, cmd); err != nil {
		return nil, err
	}
	m, err := s.LockSource(ctx, id)
	if busy := (*domain.BusyError)(nil); errors.As(err, &busy) {
		// Another start took the lock between the check above and this
		// one: the client learns of the migration its request left.
		busy.Recorded = id
	}
	return m, err
}

// LockSource locks the source of a requested migration and records it;
// a busy or deleted source fails the migration. Running it again after a
// crash is harmless.
func (s *Service) LockSource(ctx context.Context, id string) (*domain.Migration, error) {
	m, err := s.migrations.Get(ctx, id)
	if err != nil || m.State != domain.StateRequested {
		return m, err
	}
	src, lockErr := s.clusters.Exec(ctx, m.Source.ID, id+"/lock-source", SystemActor, func(c *domain.Cluster) ([]domain.Event, error) {
		return c.LockFor(id)
	})
	if lockErr == nil {
		lockErr = s.heldFirst(ctx, src)
	}
	var busy *domain.BusyError
	switch {
	case errors.As(lockErr, &busy):
		// The start and the saga both run this step; the one that comes
		// second finds the failure already recorded, which is its outcome
		// too, not an error of its own.
		if _, err := s.Record(ctx, id, id+"/failed", domain.Fail{Reason: ReasonSourceBusy, Detail: busy.Error()}); err != nil && !errors.Is(err, domain.ErrTerminal) {
			return nil, err
		}
		if busy.SameEndpointAs != "" {
			// The lock taken above, given back at once: the twin held
			// first keeps the Milvus.
			if err := s.unlockSource(ctx, m, "/unlock-source-twin", false); err != nil {
				return nil, err
			}
		}
		return m, lockErr
	case errors.Is(lockErr, domain.ErrClusterDeleted):
		_, err := s.Record(ctx, id, id+"/failed", domain.Fail{Reason: ReasonSourceDeleted, Detail: "the source cluster was deleted from the registry"})
		if errors.Is(err, domain.ErrTerminal) {
			err = nil
		}
		return m, errors.Join(lockErr, err)
	case lockErr != nil:
		return m, lockErr
	}
	locked, err := s.Record(ctx, id, id+"/locked", domain.Lock{})
	if !errors.Is(err, domain.ErrTerminal) {
		return locked, err
	}
	// The saga ended the migration, and may have unlocked the source,
	// while this lock was on its way (a refused target fails a migration
	// within milliseconds). The start still happened: answer with the
	// ended migration, and hand back a lock taken after the saga's unlock.
	if m, err = s.migrations.Get(ctx, id); err != nil {
		return nil, err
	}
	return m, s.unlockSource(ctx, m, "/unlock-source-late", false)
}

// twinsFree refuses src when the same Milvus, registered under another ID,
// is the source or the target of a running migration. Each twin's lock is
// read from its events: the registry's view, which names the twins, may
// not yet hold a lock taken a moment ago (a start sent right after
// another's answer passed it, and one Milvus was migrated twice).
func (s *Service) twinsFree(ctx context.Context, src *domain.Cluster) error {
	return s.twinHeld(ctx, src, func(*domain.Cluster) bool { return true })
}

// heldFirst settles two holds of one Milvus registered twice that each
// passed its check before the other was stored (two starts on two zdmd,
// or a start and the pool's claim of a spare): each, once its own hold is
// stored, waits for the registry to have taken in every cluster event up
// to that hold, then gives way to a twin held by an earlier event. Both
// read the same stream order, so exactly one of them keeps the Milvus. A
// registry that has not caught up within twinsWait is read as it is.
func (s *Service) heldFirst(ctx context.Context, src *domain.Cluster) error {
	if s.endpoints == nil {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, twinsWait)
	err := s.endpoints.SeenCluster(wctx, src.ID, src.HeldSince())
	cancel()
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		s.logger.Warn("the registry did not take in a cluster's hold in time; its twins are read as it has them",
			"cluster", src.ID, "migration", src.HeldBy(), "err", err)
	}
	return s.twinHeld(ctx, src, func(twin *domain.Cluster) bool {
		return twin.HeldBy() != src.HeldBy() && twin.HeldSince() < src.HeldSince()
	})
}

// twinHeld returns a BusyError naming the first registration of src's
// Milvus, other than src, that a migration holds and counts says counts.
func (s *Service) twinHeld(ctx context.Context, src *domain.Cluster, counts func(twin *domain.Cluster) bool) error {
	if s.endpoints == nil {
		return nil
	}
	for _, id := range s.endpoints.EndpointTwins(src.Endpoint, src.ID) {
		twin, err := s.clusters.Get(ctx, id)
		if errors.Is(err, domain.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if mid := twin.HeldBy(); mid != "" && !twin.Deleted && counts(twin) {
			return &domain.BusyError{ClusterID: src.ID, MigrationID: mid, SameEndpointAs: id}
		}
	}
	return nil
}

// twinsWait bounds heldFirst's wait for the registry: it follows the
// store within milliseconds.
const twinsWait = 5 * time.Second
