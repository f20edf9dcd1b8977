package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/retry"
)

// LagObserver receives every lag sample, about one a second: the metrics
// gauge and the status's series.
type LagObserver interface {
	ObserveLag(ctx context.Context, migrationID string, at time.Time, seconds float64)
}

// MigrationLister lists the migrations that have events.
type MigrationLister interface {
	Subjects(ctx context.Context, prefix string) ([]string, error)
}

// SagaConfig tunes the saga.
type SagaConfig struct {
	// LagRecordInterval is how often a lag sample is recorded in the
	// migration's history, besides every crossing of the threshold; every
	// sample goes to the LagObserver.
	LagRecordInterval time.Duration
	// Tick is how often a syncing migration checks its time limit, and
	// whether it was stopped (should the stop's event come late).
	Tick time.Duration
	// Retry is how often a failing step is tried before the migration
	// fails with the step's reason, and the pauses between the tries.
	Retry retry.Policy
	// Instance and Term name the lease term this saga runs in (several
	// zdmd sharing a NATS): each migration is taken over by the term
	// before its steps run, and a saga of an older term is fenced off.
	// Term 0 runs without fencing.
	Instance string
	Term     uint64
	// Ended, if not nil, remembers the migrations whose ending the saga
	// carried out, so that a term's start does not go over them again.
	Ended EndedMigrations
}

// EndedMigrations remembers the migrations that ended and were finished
// (finish.go). A term's start read every migration ever run and finished
// each ended one again: loads, cluster commands and journal purges that
// grew with the history, at every takeover. A mark that is lost only
// costs finishing that migration again, which is harmless.
type EndedMigrations interface {
	// EndedIDs returns the migrations marked.
	EndedIDs(ctx context.Context) (map[string]bool, error)
	// MarkEnded marks m, which ended and was finished.
	MarkEnded(ctx context.Context, m *domain.Migration) error
}

// DefaultStepRetry tries a failing step 5 times, 1 s apart at first,
// doubling up to 32 s.
func DefaultStepRetry() retry.Policy {
	return retry.Policy{Attempts: 5, First: time.Second, Max: 32 * time.Second}
}

// Saga drives every migration through its steps. Each migration has one
// runner goroutine that loads the aggregate, runs the step its state calls
// for and records the outcome; a step runs again only if its outcome was
// not recorded, so a crash never repeats a completed step.
type Saga struct {
	svc     *Service
	steps   Steps
	clock   Clock
	logger  *slog.Logger
	cfg     SagaConfig
	lister  MigrationLister
	observe LagObserver

	mu      sync.Mutex
	base    context.Context
	runners map[string]*runner
	// fenced lists the migrations a newer term took over: this saga
	// never runs them again.
	fenced map[string]bool
	// ended lists the migrations marked finished (SagaConfig.Ended): an
	// event of theirs, such as a notification sent after the end, wakes
	// no runner.
	ended map[string]bool
	wg    sync.WaitGroup
}

// NewSaga returns a saga; Start runs it.
func NewSaga(svc *Service, steps Steps, lister MigrationLister, observe LagObserver, cfg SagaConfig) *Saga {
	if cfg.LagRecordInterval <= 0 {
		cfg.LagRecordInterval = time.Minute
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	cfg.Retry = cfg.Retry.Or(DefaultStepRetry())
	return &Saga{svc: svc, steps: steps, clock: svc.clock, logger: svc.logger.With("part", "saga"),
		cfg: cfg, lister: lister, observe: observe, runners: map[string]*runner{}, fenced: map[string]bool{}, ended: map[string]bool{}}
}

type runner struct {
	id     string
	mu     sync.Mutex
	cancel context.CancelFunc
	// from is the version of the migration the running step started
	// from (0 while it loads): an event it already held does not
	// interrupt it. An event handed over while the migration loads is kept
	// in latest and weighed once it has loaded: the load may well hold it
	// already (a finish cut short by the very event that ended the
	// migration ran twice).
	from, latest uint64
}

// interrupt ends the running step, so the runner reloads the migration,
// unless the step started from a version that holds the event at seq.
// The sync step also ends on the recorded stop (an event handed to an
// instance that died comes late), and the stop's event, coming after,
// interrupted the switch that followed: it ran twice.
func (r *runner) interrupt(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latest = max(r.latest, seq)
	if r.cancel != nil && r.from != 0 && seq > r.from {
		r.cancel()
	}
}

// begin starts a step's load with its cancel.
func (r *runner) begin(cancel context.CancelFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cancel, r.from = cancel, 0
}

// loadedAt records the version the step loaded and ends it at once if
// an event came during the load that the version does not hold.
func (r *runner) loadedAt(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.from = seq
	if r.latest > seq && r.cancel != nil {
		r.cancel()
	}
}

// Start resumes every migration found in the log; runners of ended
// migrations only finish their clean-up.
func (s *Saga) Start(ctx context.Context) error {
	if s.cfg.Term != 0 {
		ctx = WithDriver(ctx, s.cfg.Instance, s.cfg.Term)
	}
	s.mu.Lock()
	s.base = ctx
	s.mu.Unlock()
	subjects, err := s.lister.Subjects(ctx, domain.MigrationSubject)
	if err != nil {
		return fmt.Errorf("resume migrations: %w", err)
	}
	if s.cfg.Ended != nil {
		ended, err := s.cfg.Ended.EndedIDs(ctx)
		if err != nil {
			// Each runner finds out from the events instead.
			s.logger.Warn("cannot read which migrations were finished; going over each", "err", err)
		}
		s.mu.Lock()
		for id := range ended {
			s.ended[id] = true
		}
		s.mu.Unlock()
	}
	for _, subj := range subjects {
		s.ensure(strings.TrimPrefix(subj, domain.MigrationSubject))
	}
	return nil
}

// Wait returns when every runner has stopped (after the Start context ends).
func (s *Saga) Wait() { s.wg.Wait() }

// Handle is the reactor: every migration event wakes its runner, and the
// events that end a step's reason to run interrupt it.
func (s *Saga) Handle(_ context.Context, subject string, records []domain.Record) error {
	id := strings.TrimPrefix(subject, domain.MigrationSubject)
	r := s.ensure(id)
	if r == nil {
		return nil
	}
	for _, rec := range records {
		switch rec.Event.(type) {
		case domain.SyncStopped, domain.Failed, domain.Cancelled:
			r.interrupt(rec.Seq)
		}
	}
	return nil
}

func (s *Saga) ensure(id string) *runner {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.base == nil || s.base.Err() != nil {
		return nil
	}
	if r, ok := s.runners[id]; ok {
		return r
	}
	if s.fenced[id] || s.ended[id] {
		return nil
	}
	r := &runner{id: id}
	s.runners[id] = r
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(s.base, r)
		s.mu.Lock()
		delete(s.runners, id)
		s.mu.Unlock()
	}()
	return r
}

func (s *Saga) run(ctx context.Context, r *runner) {
	log := s.logger.With("migration", r.id)
	attempts, lastSeq := 0, uint64(0)
	for ctx.Err() == nil {
		stepCtx, cancel := context.WithCancel(ctx)
		r.begin(cancel)
		m, err := s.svc.Migration(stepCtx, r.id)
		if err == nil {
			r.loadedAt(m.Seq())
		}
		if err == nil && domain.IsTerminal(m.State) {
			if err = s.finish(stepCtx, m); err == nil {
				s.markEnded(stepCtx, m)
				cancel()
				return
			}
		} else if err == nil && s.cfg.Term != 0 && m.Driver.Term != s.cfg.Term {
			var taken *domain.Migration
			taken, err = s.svc.Record(stepCtx, r.id, fmt.Sprintf("%s/driver-%d", r.id, s.cfg.Term), domain.TakeDriving{Instance: s.cfg.Instance, Term: s.cfg.Term})
			if err == nil && taken.Driver.Term == s.cfg.Term {
				log.Info("took over driving the migration", "term", s.cfg.Term, "from", m.Driver.Instance)
			}
		} else if err == nil {
			if m.Seq() != lastSeq {
				attempts, lastSeq = 0, m.Seq()
			}
			err = s.step(stepCtx, m)
		}
		if errors.Is(err, domain.ErrFenced) {
			log.Warn("a newer zdmd drives the migration; this one leaves it", "err", err)
			s.mu.Lock()
			s.fenced[r.id] = true
			s.mu.Unlock()
			cancel()
			return
		}
		interrupted := stepCtx.Err() != nil && ctx.Err() == nil
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil || interrupted {
			continue // progressed, or interrupted by a newer event: reload
		}
		if isNotFound(err) {
			log.Warn("runner for a migration without events stops", "err", err)
			return
		}
		attempts++
		var se *domain.StepError
		permanent := errors.As(err, &se) && se.Permanent
		if m != nil && !domain.IsTerminal(m.State) && (permanent || s.cfg.Retry.Last(attempts)) {
			log.Error("step failed; failing the migration", "state", m.State, "attempts", attempts, "err", err)
			reason, detail := stepReason(m.State, err)
			if _, ferr := s.svc.Record(ctx, r.id, fmt.Sprintf("%s/failed", r.id), domain.Fail{Reason: reason, Detail: detail}); ferr == nil {
				continue
			}
		}
		log.Warn("step failed; retrying", "attempt", attempts, "err", err)
		_ = s.cfg.Retry.Wait(ctx, attempts)
	}
}

func stepReason(state domain.State, err error) (string, string) {
	var se *domain.StepError
	if errors.As(err, &se) {
		return se.Reason, se.Err.Error()
	}
	reasons := map[domain.State]string{
		domain.StateRequested: "lock_failed", domain.StateLocked: "provisioning_failed",
		domain.StateProvisioning: "provisioning_failed", domain.StateTargetProvisioned: "inventory_failed",
		domain.StateCopying: "copy_failed", domain.StateSyncing: "sync_failed", domain.StateSyncStopped: "switch_failed",
	}
	return reasons[state], err.Error()
}
