package livesync

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/verify"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/retry"
)

// MigrationReader reads a migration's current aggregate.
type MigrationReader interface {
	Migration(ctx context.Context, id string) (*domain.Migration, error)
}

// Config tunes the sync.
type Config struct {
	// FingerprintEvery is how often the source's schema is compared with
	// what the proxy let through (default 10s).
	FingerprintEvery time.Duration
	// DrainTimeout bounds the applier's catch-up before the switch holds
	// writes, a tenth of it each round (default 5m); once writes are
	// held, HoldLimit bounds the drain.
	DrainTimeout time.Duration
	// HoldLimit bounds how long the switch holds the applications' writes
	// (default 10s): a target that stalls meanwhile, or a drain or check
	// that outlasts it, ends the attempt and the writes go on to the
	// source.
	HoldLimit time.Duration
	// LagEvery is how often Sync samples the lag (default 1s).
	LagEvery time.Duration
	// ApplyRetry paces the tries of a journaled write that does not apply
	// to the target (default DefaultApplyRetry).
	ApplyRetry retry.Policy
	// StuckAfter is how long a journaled write may keep failing on the
	// target before the migration fails apply_failed (default
	// DefaultStuckAfter).
	StuckAfter time.Duration
	// Sealer opens the passwords the capture sealed in the journal.
	Sealer capture.Sealer
	// ExpirySweepEvery is how often the sync deletes from the target the
	// rows the source removed after their time to live (default
	// DefaultExpirySweepEvery; expirysweep.go).
	ExpirySweepEvery time.Duration
	// Notes records in a migration's status what the target could not
	// replay as the source did (nil: the log only); a note must not hold
	// up the writes behind it for long.
	Notes Noter
}

// Noter records what the operator should know of a migration.
type Noter interface {
	NoteMigration(ctx context.Context, id, note string) error
}

// Syncer captures, applies, measures the lag and switches, for the saga.
type Syncer struct {
	resolve    milvus.Resolver
	capture    *capture.Capture
	journal    capture.JournalLog
	positions  Positions
	migrations MigrationReader
	failer     capture.Failer
	cfg        Config
	logger     *slog.Logger

	mu   sync.Mutex
	runs map[string]*syncRun
	base context.Context
	// running counts the runs' goroutines, for Wait.
	running sync.WaitGroup
}

type syncRun struct {
	ctx     context.Context // ends with the run, when this zdmd stops driving
	cancel  context.CancelFunc
	applier *Applier
	source  *milvus.Conn
	target  *milvus.Conn
	done    chan struct{}
}

// NewSyncer returns a syncer; base bounds the background work it starts.
func NewSyncer(base context.Context, r milvus.Resolver, c *capture.Capture, j capture.JournalLog, pos Positions, mr MigrationReader, f capture.Failer, cfg Config, logger *slog.Logger) *Syncer {
	if cfg.FingerprintEvery <= 0 {
		cfg.FingerprintEvery = 10 * time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 5 * time.Minute
	}
	if cfg.HoldLimit <= 0 {
		cfg.HoldLimit = DefaultHoldLimit
	}
	if cfg.ExpirySweepEvery <= 0 {
		cfg.ExpirySweepEvery = DefaultExpirySweepEvery
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Syncer{resolve: r, capture: c, journal: j, positions: pos, migrations: mr, failer: f, cfg: cfg, logger: logger,
		runs: map[string]*syncRun{}, base: base}
}

// Wait returns once every run has stopped, after the base context ended:
// an instance that gives up driving the migrations must not apply a write
// after another one started to.
func (s *Syncer) Wait() { s.running.Wait() }

// Arm captures the source's writes and, once the target exists, applies
// them and watches the source's schema.
func (s *Syncer) Arm(ctx context.Context, m *domain.Migration) error {
	s.capture.Arm(m.Source.ID, m.ID, m.Options)
	if m.TargetCluster.ClusterID == "" {
		return nil
	}
	_, err := s.run(ctx, m)
	return err
}

func (s *Syncer) run(ctx context.Context, m *domain.Migration) (*syncRun, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.runs[m.ID]; ok {
		return r, nil
	}
	target, err := milvus.Connect(ctx, s.resolve, m.TargetCluster.ClusterID, "target")
	if err != nil {
		return nil, err
	}
	source, err := milvus.Connect(ctx, s.resolve, m.Source.ID, "source")
	if err != nil {
		target.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(s.base)
	r := &syncRun{ctx: rctx, cancel: cancel, source: source, target: target, done: make(chan struct{})}
	el := &eligibility{read: func(ctx context.Context) (*domain.Migration, error) { return s.migrations.Migration(ctx, m.ID) }}
	r.applier = NewApplier(m.ID, s.journal, source, target, s.positions, m.Options.AutoID == domain.AutoIDPreserveKeys,
		func(db, coll string) bool { return el.eligible(rctx, db, coll) },
		func(err error) {
			_ = s.failer.FailMigration(context.WithoutCancel(rctx), m.ID, "apply_failed", err.Error())
		},
		s.logger.With("migration", m.ID)).Retry(s.cfg.ApplyRetry).StuckAfter(s.cfg.StuckAfter).OpenPasswords(s.cfg.Sealer).AwaitOutcomes(s.capture)
	if s.cfg.Notes != nil {
		r.applier.NoteTo(func(ctx context.Context, note string) { s.note(ctx, m, note) })
	}
	s.runs[m.ID] = r
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		defer close(r.done)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); s.watchSchema(rctx, m) }()
		r.applier.Run(rctx)
		wg.Wait()
	}()
	return r, nil
}

// eligibility says which collections' writes may be applied: those whose
// copy finished, and those created after the copy was planned.
type eligibility struct {
	read func(context.Context) (*domain.Migration, error)
	mu   sync.Mutex
	m    *domain.Migration
	at   time.Time
}

func (e *eligibility) eligible(ctx context.Context, db, coll string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil || time.Since(e.at) > 300*time.Millisecond {
		if m, err := e.read(ctx); err == nil {
			e.m, e.at = m, time.Now()
		}
	}
	if e.m == nil || e.m.CopyStartedAt.IsZero() {
		return false
	}
	for _, c := range e.m.Collections {
		if c.Database == db && c.Collection == coll {
			return c.Done
		}
	}
	return true
}

// Sync reports the lag about once a second until ctx ends.
func (s *Syncer) Sync(ctx context.Context, m *domain.Migration, lag func(context.Context, float64) error) error {
	r, err := s.run(ctx, m)
	if err != nil {
		return err
	}
	every := s.cfg.LagEvery
	if every <= 0 {
		every = time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	sweeping := make(chan struct{})
	go func() { defer close(sweeping); s.sweepExpiredEvery(ctx, m, r) }()
	defer func() { <-sweeping }()
	for {
		seconds, err := r.applier.Lag(ctx, time.Now())
		if err == nil {
			err = lag(ctx, seconds)
		}
		if err != nil && ctx.Err() == nil {
			s.logger.Warn("lag sample failed", "migration", m.ID, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Switch holds new writes at the proxy, drains the journal up to the
// fence (the newest journaled write), and checks counts and a sample of
// rows per collection. On success the writes stay held: route sends them
// to the target (true) once the switch is recorded, or back to the source
// (false) when it could not be. A zdmd that dies before the record resumes
// them on the source after its restart, one that dies after it routes them
// to the target; never both. On an error they go on to the source.
func (s *Syncer) Switch(ctx context.Context, m *domain.Migration) (domain.SwitchedOver, domain.Verified, func(toTarget bool), error) {
	none := domain.Verified{}
	r, err := s.run(ctx, m)
	if err != nil {
		return domain.SwitchedOver{}, none, nil, err
	}
	targetEP, err := s.resolve.Endpoint(ctx, m.TargetCluster.ClusterID)
	if err != nil {
		return domain.SwitchedOver{}, none, nil, err
	}
	// The writes without a known outcome repaired again while writes
	// flow, where they can be (settle.go): after the journal so far is
	// applied, so that each is repaired and kept by then, and before the
	// check made before the hold, which then reads what they wrote. The
	// rows the source removed after their time to live since the sync's
	// last sweep are deleted first, while writes flow.
	swept := s.sweepExpired(ctx, m, r)
	_, _ = s.caughtUp(ctx, m, r.applier)
	if _, err := r.applier.SettleRepairs(ctx); err != nil {
		if ctx.Err() != nil {
			return domain.SwitchedOver{}, none, nil, ctx.Err()
		}
		s.logger.Warn("writes without a known outcome not repaired again before the hold; they are while writes are held",
			"migration", m.ID, "err", err)
	}
	// The keys applied from now on: fence0, after which the check while
	// writes are held reads the keys written, is taken after this.
	defer r.applier.WatchKeys()()
	pre, described, fence0, err := s.beforeHold(ctx, m, r)
	if err != nil {
		return domain.SwitchedOver{}, none, nil, err
	}
	began := time.Now()
	release, err := s.capture.Hold(ctx, m.Source.ID)
	if err != nil {
		return domain.SwitchedOver{}, none, nil, err
	}
	routed := false
	defer func() {
		if !routed {
			release()
		}
	}()
	s.logger.Info("writes held for the switch", "migration", m.ID)
	held, endHold := context.WithTimeout(ctx, s.cfg.HoldLimit)
	defer endHold()
	tooLong := func(err error) error {
		if held.Err() == nil || ctx.Err() != nil {
			return err
		}
		if n := s.cfg.Notes; n != nil {
			// Once per migration: the status says why the switch takes
			// longer than asked, where the log alone would. Recorded
			// beside the release, which must not wait for the store.
			go n.NoteMigration(context.WithoutCancel(ctx), m.ID, fmt.Sprintf("a switch held writes %s, the hold limit (milvus.switch_hold_limit), before the target was caught up and checked; "+
				"the writes went on to the source and the switch is tried again", s.cfg.HoldLimit))
		}
		return &domain.StepError{Reason: "switch_hold_exceeded", Err: fmt.Errorf(
			"writes were held %s and the target was not caught up and checked by then (%w); they went on to the source, and the switch is tried again", s.cfg.HoldLimit, err)}
	}
	fence, err := s.journal.LastSeq(held, capture.JournalPrefix(m.ID)+">")
	if err != nil {
		return domain.SwitchedOver{}, none, nil, tooLong(err)
	}
	if err := s.drainTo(held, r.applier, fence, s.cfg.DrainTimeout); err != nil {
		return domain.SwitchedOver{}, none, nil, tooLong(err)
	}
	drained := time.Now()
	kept, again, err := r.applier.KeptRepairs(held)
	if err != nil {
		return domain.SwitchedOver{}, none, nil, tooLong(err)
	}
	rep, repairMS, err := repairAndCheck(held, r, kept, again, pre, fence0, described)
	keepEarlyRemovals(rep, pre, swept)
	if err == nil && rep.Equal {
		_, err = verify.RemoveExpired(held, r.target, rep)
	}
	if err != nil {
		return domain.SwitchedOver{}, none, nil, tooLong(err)
	}
	data, _ := json.Marshal(rep)
	check := domain.Verified{Phase: "switch", Equal: rep.Equal, Report: data}
	if !rep.Equal {
		return domain.SwitchedOver{}, check, nil, &domain.StepError{Reason: "switch_check_failed", Permanent: true,
			Err: fmt.Errorf("after the drain the target differs from the source (%s); were writes sent around the proxy?", rep.Summary())}
	}
	checked := time.Now()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	routed = true // the caller releases the writes
	route := func(toTarget bool) {
		if toTarget {
			s.capture.Route(m.Source.ID, targetEP.Address)
			s.capture.Disarm(m.ID) // lets the held writes go on, to the target
		}
		release()
	}
	return domain.SwitchedOver{TargetEndpoint: targetEP.Address, WritePauseMS: ms(checked.Sub(began)),
		DrainMS: ms(drained.Sub(began)), RepairMS: ms(repairMS), CheckMS: ms(checked.Sub(drained)), RepairInCheck: true}, check, route, nil
}

// DefaultHoldLimit is how long a switch holds writes at most: the pause is
// normally under a second; a target that stalls must not hold the
// applications for the drain's minutes.
const DefaultHoldLimit = 10 * time.Second

// drainTo waits until the applier has applied the journal up to fence.
func (s *Syncer) drainTo(ctx context.Context, a *Applier, fence uint64, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		drained, err := a.Drained(ctx, fence)
		if err != nil {
			return err
		}
		if drained {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the journal was not applied up to the fence %d within %s", fence, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Disarm stops capturing and applying for an ended migration and drops
// its journal.
func (s *Syncer) Disarm(ctx context.Context, m *domain.Migration) error {
	s.capture.Disarm(m.ID)
	if err := s.capture.DropKept(ctx, m.ID); err != nil {
		return err
	}
	s.mu.Lock()
	r, ok := s.runs[m.ID]
	delete(s.runs, m.ID)
	s.mu.Unlock()
	if ok {
		r.cancel()
		<-r.done
		r.target.Close()
		r.source.Close()
	}
	if err := s.journal.Purge(ctx, capture.JournalPrefix(m.ID)+">"); err != nil {
		return err
	}
	// The apply positions and the kept repairs go with the journal.
	kept, err := s.positions.Matching(ctx, capture.JournalPrefix(m.ID)+">")
	if err != nil {
		return err
	}
	for key := range kept {
		if err := s.positions.Delete(ctx, key); err != nil {
			return err
		}
	}
	return nil
}
