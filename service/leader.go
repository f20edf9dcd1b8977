package service

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/handlers"
)

// sagaLease names the lease whose holder drives every migration.
const sagaLease = "saga"

// termPlane is the data plane of one term: its steps, the proxies (none
// for the simulated plane) and a wait for its background work.
type termPlane struct {
	steps   handlers.Steps
	proxies *proxies
	wait    func()
}

// newPlane builds a term's data plane, whose work lasts as long as ctx;
// lost ends only if the term ends because the lease was lost (not at a
// clean stop, when the lease is kept until the plane stopped).
type newPlane func(ctx, lost context.Context) (termPlane, error)

// leadLoop takes the saga's lease whenever it is free and drives the
// migrations while it holds it. Every instance serves the API; only the
// lease's holder runs the saga, the notifier and the proxies, so two
// instances never drive one migration nor forward its writes at once.
//
// The lease is kept until the term's work has stopped, and given back
// only then: a proxy finishing its last writes at a clean stop journals
// them before another instance's proxy accepts any.
func (m *Main) leadLoop(ctx context.Context) {
	defer close(m.leadDone)
	for ctx.Err() == nil {
		t, err := m.lease.Acquire(ctx)
		if err != nil {
			return
		}
		m.logger.Info("this zdmd now drives the migrations", "instance", m.instance, "term", t.Revision)
		tctx, cancel := context.WithCancelCause(ctx)
		lost, lose := context.WithCancelCause(context.WithoutCancel(ctx))
		keep, release := context.WithCancel(context.WithoutCancel(ctx))
		kept := make(chan struct{})
		m.leading.Store(true)
		// Said as soon as the term begins to stop: the load balancer sends
		// new connections elsewhere while the proxies finish.
		said := make(chan struct{})
		context.AfterFunc(tctx, func() { m.leading.Store(false); close(said) })
		go func() {
			defer close(kept)
			if err := m.lease.Keep(keep, t); err != nil {
				// Said at once: the term may take a while to stop, and
				// another instance may drive meanwhile.
				m.leading.Store(false)
				lose(err)
				cancel(err)
			}
		}()
		err = m.lead(tctx, lost, t.Revision)
		cause := context.Cause(tctx)
		cancel(nil)
		<-said // before the next term says it leads
		release()
		<-kept
		lose(nil)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// A term that could not start gives the lease back and lets
			// another instance try before this one does again.
			m.logger.Error("could not drive the migrations; standing by", "instance", m.instance, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(m.cfg.leaseTTL()):
			}
			continue
		}
		m.logger.Warn("stopped driving the migrations; standing by", "instance", m.instance, "cause", cause)
	}
}

// lead runs one term until ctx ends, then stops everything it started and
// waits for it: the lease is given back once it returns.
func (m *Main) lead(ctx, lost context.Context, term uint64) error {
	plane, err := m.plane(ctx, lost)
	if err != nil {
		return err
	}
	defer plane.wait()
	saga := handlers.NewSaga(m.service, plane.steps, m.store, lagObservers{m.metrics, m.lag}, handlers.SagaConfig{
		LagRecordInterval: m.cfg.Saga.LagRecordInterval, Retry: m.cfg.stepRetry(), Tick: m.cfg.Saga.Tick,
		Instance: m.instance, Term: term, Ended: m.ended,
	})
	var subs []*eventstore.Subscription
	defer func() {
		for _, s := range subs {
			s.Stop()
		}
		saga.Wait()
	}()
	if plane.proxies != nil {
		// Retried like any write to the store: a term that starts while
		// NATS elects leaders waits for them rather than giving the lease
		// back, and never starts its proxies on a partial list.
		if err := m.cfg.storeRetry().Do(ctx, func(int) error { return plane.proxies.prime(ctx) }); err != nil {
			return err
		}
		done := make(chan struct{})
		defer func() { <-done }()
		go func() { defer close(done); plane.proxies.run(ctx) }()
	}
	if err := saga.Start(ctx); err != nil {
		return err
	}
	consume := func(durable string, h eventstore.Handler) error {
		sub, _, err := m.store.Consume(ctx, eventstore.ConsumeConfig{Durable: durable, Filter: domain.MigrationSubject + ">", Logger: m.logger, Retry: m.cfg.Retry.Events}, h)
		if err == nil {
			subs = append(subs, sub)
		}
		return err
	}
	if m.notifier != nil {
		if err := consume(consumerNotify, m.notifier.Handle); err != nil {
			return err
		}
		every := m.cfg.TimeLimitCheck
		if every <= 0 {
			every = time.Minute
		}
		go m.notifier.WatchTimeLimits(ctx, every)
	}
	if err := consume(consumerSaga, saga.Handle); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// prime arms the capture of every migration still running and routes the
// sources of switched migrations to their targets, before any proxy
// accepts a call. It reads the migrations from their events, not from the
// views, which may not yet show what the last holder recorded; those
// marked ended and finished are read from their marks, which stay true:
// reading every migration ever run delayed every takeover by the history.
func (ps *proxies) prime(ctx context.Context) error {
	subjects, err := ps.m.store.Subjects(ctx, domain.MigrationSubject)
	if err != nil {
		return fmt.Errorf("prime the proxies: %w", err)
	}
	ended, err := ps.m.ended.marks(ctx)
	if err != nil {
		ps.m.logger.Warn("reading every migration from its events", "err", err)
	}
	for _, subj := range subjects {
		id := strings.TrimPrefix(subj, domain.MigrationSubject)
		if mk, ok := ended[id]; ok {
			if mk.State == domain.StateSwitchedOver && mk.TargetEndpoint != "" {
				ps.capture.Route(mk.SourceID, mk.TargetEndpoint)
			}
			continue
		}
		// A listed subject has events: a migration that reads as not
		// found is a read that failed, and its writes must not go to the
		// source uncaptured while the term starts.
		mig, err := ps.m.service.Migration(ctx, id)
		if err != nil {
			return fmt.Errorf("prime the proxies: %w", err)
		}
		switch {
		case mig.State == domain.StateSwitchedOver && mig.Switch.TargetEndpoint != "":
			ps.capture.Route(mig.Source.ID, mig.Switch.TargetEndpoint)
		case !domain.IsTerminal(mig.State) && mig.State != domain.StateRequested:
			ps.capture.Arm(mig.Source.ID, mig.ID, mig.Options)
			ps.m.logger.Info("capturing the writes of a running migration", "migration", mig.ID, "cluster", mig.Source.ID,
				"state", mig.State, "seq", mig.Seq())
		}
	}
	return nil
}

// followDriver keeps what drivingEndpoint knows of the lease's holder as
// each write of the lease is stored, and tells the endpoints at once when
// another instance takes it: calls waiting to be relayed go to it then,
// not at their next look, up to 300 ms later at every takeover.
func (m *Main) followDriver(ctx context.Context) {
	for ctx.Err() == nil {
		err := m.lease.Follow(ctx, func(v eventstore.LeaseValue) {
			if m.driving.seen(v) && m.endpoints != nil {
				m.endpoints.nudge()
			}
		})
		if err != nil {
			m.logger.Debug("following the lease; looking again", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// drivingEndpoint is where the instance that drives the migrations serves
// a cluster's endpoint, as the view of who drives holds it (driverView);
// "" if none is known, or it is this instance (which serves its own calls).
func (m *Main) drivingEndpoint(clusterID string) string {
	v := m.driving.holder(m.baseCtx)
	if v.Holder == m.instance {
		return ""
	}
	return v.Endpoints[clusterID]
}
