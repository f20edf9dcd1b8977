package handlers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zdm-io/zdm/domain"
)

// step runs what m's state calls for and records its outcome. The command
// ID of each outcome is keyed by migration and step, so a retried append
// after a crash is stored once.
func (s *Saga) step(ctx context.Context, m *domain.Migration) error {
	if err := s.steps.missing(m.State); err != nil {
		return err
	}
	if s.steps.Syncer != nil && m.State != domain.StateRequested {
		if err := s.steps.Syncer.Arm(ctx, m); err != nil {
			return err
		}
	}
	switch m.State {
	case domain.StateRequested:
		_, err := s.svc.LockSource(ctx, m.ID)
		var busy *domain.BusyError
		if errors.As(err, &busy) || errors.Is(err, domain.ErrClusterDeleted) {
			return nil // recorded as Failed
		}
		return err
	case domain.StateLocked:
		// The capture is armed, so no new import gets through the proxy;
		// one already running keeps the source from being migrated (R5).
		if s.steps.Source != nil {
			if err := s.steps.Source.CheckSource(ctx, m); err != nil {
				return err
			}
		}
		_, err := s.svc.Record(ctx, m.ID, m.ID+"/provisioning", domain.StartProvisioning{})
		return err
	case domain.StateProvisioning:
		return s.provision(ctx, m)
	case domain.StateTargetProvisioned:
		plan, err := s.steps.Copier.Plan(ctx, m)
		if err != nil {
			return err
		}
		_, err = s.svc.Record(ctx, m.ID, m.ID+"/copy-started", domain.StartCopy{Plan: plan})
		return err
	case domain.StateCopying:
		return s.copy(ctx, m)
	case domain.StateSyncing:
		return s.sync(ctx, m)
	case domain.StateSyncStopped:
		return s.switchOver(ctx, m)
	}
	return nil
}

func (s *Saga) provisioner(m *domain.Migration) (Provisioner, error) {
	p, ok := s.steps.Provisioners[m.Target.Provisioner]
	if !ok {
		return nil, &domain.StepError{Reason: "provisioner_unavailable", Permanent: true,
			Err: fmt.Errorf("provisioner %q is not configured on this zdmd", m.Target.Provisioner)}
	}
	return p, nil
}

func (s *Saga) provision(ctx context.Context, m *domain.Migration) error {
	p, err := s.provisioner(m)
	if err != nil {
		return err
	}
	t, err := p.Provision(ctx, m)
	if err != nil {
		return err
	}
	if err := s.svc.claimTarget(ctx, m, t); err != nil {
		return err
	}
	_, err = s.svc.Record(ctx, m.ID, m.ID+"/target-provisioned", domain.RecordTarget{Target: domain.TargetProvisioned{
		ClusterID: t.ClusterID, Endpoint: t.Endpoint, Version: t.Version,
	}})
	return err
}

// claimTarget puts the target in the registry with status Syncing (R6).
func (s *Service) claimTarget(ctx context.Context, m *domain.Migration, t domain.Target) error {
	if !t.Registered && !t.Credentials.Empty() && s.creds != nil {
		if err := s.creds.Put(ctx, t.ClusterID, t.Credentials); err != nil {
			return err
		}
	}
	// The command names the cluster and the version of it the claim was
	// decided on: a provision tried again may claim another cluster (the
	// one it claimed became unusable), and a spare given back may be
	// claimed again later (claimedFirst); under one ID, the first would
	// be refused as another aggregate's and the second taken for the
	// first claim, stored once.
	var seq uint64
	if t.Registered {
		c, err := s.clusters.Get(ctx, t.ClusterID)
		if err != nil {
			return err
		}
		seq = c.Seq()
	}
	c, err := s.clusters.Exec(ctx, t.ClusterID, fmt.Sprintf("%s/claim-target/%s@%d", m.ID, t.ClusterID, seq), SystemActor, func(c *domain.Cluster) ([]domain.Event, error) {
		switch {
		case t.Registered && c.ClaimedBy == m.ID:
			return nil, nil
		case t.Registered && c.HeldBy() != "":
			return nil, &domain.BusyError{ClusterID: c.ID, MigrationID: c.HeldBy()}
		case t.Registered:
			return []domain.Event{domain.ClusterClaimed{MigrationID: m.ID}}, nil
		case c.Seq() != 0:
			return nil, nil
		}
		return []domain.Event{domain.ClusterRegistered{
			ID: t.ClusterID, Name: m.Target.Name, Organization: m.Organization, Project: m.Target.Project,
			Endpoint: t.Endpoint, Provisioner: m.Target.Provisioner, MigrationID: m.ID, HasCredentials: !t.Credentials.Empty(),
			StoragePath: t.StoragePath,
		}}, nil
	})
	if err != nil || !t.Registered {
		return err
	}
	return s.claimedFirst(ctx, m, c)
}

// claimedFirst settles a claim of a spare against a start of another
// registration of its Milvus sent at the same moment, each of which
// passed its check before the other held it: the hold stored first keeps
// the Milvus (heldFirst). A claim stored second is given back, and the
// provision fails, to be tried again: the pool then passes the spare by.
func (s *Service) claimedFirst(ctx context.Context, m *domain.Migration, spare *domain.Cluster) error {
	err := s.heldFirst(ctx, spare)
	var busy *domain.BusyError
	if !errors.As(err, &busy) || busy.SameEndpointAs == "" {
		return err
	}
	// The ID names the claim given back: the spare may be claimed again,
	// and that claim given back too.
	_, rerr := s.clusters.Exec(ctx, spare.ID, fmt.Sprintf("%s/unclaim-twin/%s@%d", m.ID, spare.ID, spare.ClaimedSeq), SystemActor, func(c *domain.Cluster) ([]domain.Event, error) {
		if c.ClaimedBy != m.ID {
			return nil, nil
		}
		return []domain.Event{domain.ClusterReleased{MigrationID: m.ID}}, nil
	})
	return errors.Join(fmt.Errorf("spare %s given back: %w", spare.ID, err), rerr)
}

func (s *Saga) copy(ctx context.Context, m *domain.Migration) error {
	err := s.steps.Copier.Copy(ctx, m, func(ctx context.Context, p domain.BulkCopyProgressed) error {
		key := fmt.Sprintf("%s/copy/%s/%s/%s", m.ID, p.Database, p.Collection, p.Range)
		switch {
		case p.Skipped != "":
			key = fmt.Sprintf("%s/skip/%s/%s", m.ID, p.Database, p.Collection)
		case p.Plan != nil:
			key = fmt.Sprintf("%s/plan/%s/%s", m.ID, p.Database, p.Collection)
		}
		_, err := s.svc.Record(ctx, m.ID, key, domain.RecordCopyProgress{Progress: p})
		return err
	})
	if err != nil {
		return err
	}
	if s.steps.Verifier != nil {
		v, err := s.steps.Verifier.Verify(ctx, m, "copy")
		if err != nil {
			return err
		}
		if _, err := s.svc.Record(ctx, m.ID, m.ID+"/verified-copy", domain.RecordVerification{Report: v}); err != nil {
			return err
		}
	}
	_, err = s.svc.Record(ctx, m.ID, m.ID+"/bulk-copied", domain.CompleteCopy{})
	return err
}

// sync keeps the target caught up until the operator stops it or the
// time limit (R10) passes; the deadline comes from the recorded history,
// so it holds across restarts.
func (s *Saga) sync(ctx context.Context, m *domain.Migration) error {
	syncCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	recorded := m
	lag := func(ctx context.Context, seconds float64) error {
		now := s.clock.Now()
		if s.observe != nil {
			s.observe.ObserveLag(ctx, m.ID, now, seconds)
		}
		if !recorded.LagDue(seconds, now, s.cfg.LagRecordInterval) {
			return nil
		}
		after, err := s.svc.Record(ctx, m.ID, "", domain.SampleLag{LagSeconds: seconds, Now: now})
		if err != nil {
			return err
		}
		recorded = after
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- s.steps.Syncer.Sync(syncCtx, m, lag) }()
	tick := time.NewTicker(s.cfg.Tick)
	defer tick.Stop()
	for {
		if !s.clock.Now().Before(m.SyncDeadline()) {
			cancel()
			<-done
			_, err := s.svc.Record(ctx, m.ID, m.ID+"/time-limit", domain.EnforceTimeLimit{Now: s.clock.Now()})
			return err
		}
		select {
		case err := <-done:
			if err == nil && ctx.Err() == nil {
				err = errors.New("sync ended by itself")
			}
			return err
		case <-tick.C:
		}
		// The operator's stop ends this step through its event. Should
		// that come late (handed to the pull of an instance that died, it
		// comes again only after the consumer's ack wait, a minute), the
		// recorded state says it too.
		if now, err := s.svc.Migration(ctx, m.ID); err == nil && now.State != domain.StateSyncing {
			cancel()
			<-done
			return nil
		}
	}
}

func (s *Saga) switchOver(ctx context.Context, m *domain.Migration) error {
	sw, check, route, err := s.steps.Syncer.Switch(ctx, m)
	if err != nil {
		if check.Phase != "" {
			// A check that found the clusters different is kept with its
			// report: the failure's detail says only where they differ.
			if _, rerr := s.svc.Record(ctx, m.ID, m.ID+"/verified-switch-failed", domain.RecordVerification{Report: check}); rerr != nil {
				s.logger.Warn("the failed switch check's report is not in the history", "migration", m.ID, "err", rerr)
			}
		}
		return err
	}
	// The switch is recorded before any held write goes on to the target.
	_, err = s.svc.Record(ctx, m.ID, m.ID+"/verified-switch", domain.RecordVerification{Report: check})
	if err == nil {
		_, err = s.svc.Record(ctx, m.ID, m.ID+"/switched-over", domain.CompleteSwitch{Switch: sw})
	}
	if err != nil {
		// An append whose answer was lost may have been stored: the
		// history decides where the held writes go.
		cur, lerr := s.svc.Migration(context.WithoutCancel(ctx), m.ID)
		route(lerr == nil && cur.State == domain.StateSwitchedOver)
		return err
	}
	route(true)
	return nil
}

// missing refuses a state whose data-plane part this zdmd does not have.
func (st Steps) missing(state domain.State) error {
	var part string
	switch {
	case (state == domain.StateTargetProvisioned || state == domain.StateCopying) && st.Copier == nil:
		part = "copy"
	case (state == domain.StateSyncing || state == domain.StateSyncStopped) && st.Syncer == nil:
		part = "sync"
	default:
		return nil
	}
	return &domain.StepError{Reason: part + "_unavailable", Permanent: true,
		Err: fmt.Errorf("this zdmd's data plane has no %s step", part)}
}

// AllSteps is a data plane that provides every step itself (the simulated
// one).
type AllSteps interface {
	Provisioner
	Copier
	Syncer
	Verifier
}

// StepsOf returns the steps of a data plane that provides them all, its
// provisioner under the given name.
func StepsOf(provisioner string, dp AllSteps) Steps {
	return Steps{Provisioners: map[string]Provisioner{provisioner: dp}, Copier: dp, Syncer: dp, Verifier: dp}
}
