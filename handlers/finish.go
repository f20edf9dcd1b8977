package handlers

import (
	"context"

	"github.com/zdm-io/zdm/domain"
)

// finish does what an ended migration leaves to do: stop capturing, and
// hand the clusters back. After a switch the source is kept and marked
// Migrated, the target runs (R11); after a failure or a cancel the target is
// released and the source unlocked. Every part checks before it acts, so
// finishing twice is harmless.
func (s *Saga) finish(ctx context.Context, m *domain.Migration) error {
	if s.steps.Syncer != nil { // nothing was captured without one
		if err := s.steps.Syncer.Disarm(ctx, m); err != nil {
			return err
		}
	}
	switched := m.State == domain.StateSwitchedOver
	if !switched && m.TargetRequested {
		// A provisioner this zdmd does not have cannot have made a target.
		if p, err := s.provisioner(m); err == nil {
			if err := p.Release(ctx, m); err != nil {
				return err
			}
		}
	}
	if m.TargetCluster.ClusterID != "" {
		if err := s.svc.releaseTarget(ctx, m, switched); err != nil {
			return err
		}
	}
	return s.svc.unlockSource(ctx, m, "/unlock-source", switched)
}

// markEnded remembers that m was finished (see EndedMigrations).
func (s *Saga) markEnded(ctx context.Context, m *domain.Migration) {
	if s.cfg.Ended == nil {
		return
	}
	if err := s.cfg.Ended.MarkEnded(ctx, m); err != nil {
		s.logger.Warn("cannot mark the migration finished; the next term finishes it again", "migration", m.ID, "err", err)
		return
	}
	s.mu.Lock()
	s.ended[m.ID] = true
	s.mu.Unlock()
}

// unlockSource hands the source back if m still holds it. The command ID
// is the caller's: a late lock after the first unlock needs an unlock of
// its own, which the first one's ID would have deduplicated away.
func (s *Service) unlockSource(ctx context.Context, m *domain.Migration, suffix string, switched bool) error {
	_, err := s.clusters.Exec(ctx, m.Source.ID, m.ID+suffix, SystemActor, func(c *domain.Cluster) ([]domain.Event, error) {
		if c.LockedBy != m.ID {
			return nil, nil
		}
		return []domain.Event{domain.ClusterUnlocked{MigrationID: m.ID, Migrated: switched}}, nil
	})
	return err
}

func (s *Service) releaseTarget(ctx context.Context, m *domain.Migration, switched bool) error {
	_, err := s.clusters.Exec(ctx, m.TargetCluster.ClusterID, m.ID+"/release-target", SystemActor, func(c *domain.Cluster) ([]domain.Event, error) {
		if c.ClaimedBy != m.ID {
			return nil, nil
		}
		if switched {
			return []domain.Event{domain.ClusterActivated{MigrationID: m.ID}}, nil
		}
		return []domain.Event{domain.ClusterReleased{MigrationID: m.ID, Removed: c.Provisioner != ""}}, nil
	})
	return err
}
