package livesync

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/retry"
)

// Positions keeps how far each journal subject was applied.
type Positions interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, value []byte) error
	// Matching returns the keys a NATS subject filter matches.
	Matching(ctx context.Context, filter string) (map[string][]byte, error)
	Delete(ctx context.Context, key string) error
}

// Applier replays one migration's journal onto its target: a reader per
// collection, in the order the source committed, collections in parallel.
type Applier struct {
	id           string
	journal      capture.JournalLog
	source       *milvus.Conn // read to repair uncertain writes
	target       *milvus.Conn
	positions    Positions
	preserveKeys bool
	// eligible reports whether a collection's copy is finished, so its
	// writes may be applied.
	eligible func(db, coll string) bool
	onStuck  func(err error)
	// stuckAfter is how long an entry fails before onStuck hears of it.
	stuckAfter time.Duration
	logger     *slog.Logger
	// sealer opens the passwords the capture sealed.
	sealer capture.Sealer
	// outcomes is the capture whose writes' outcomes are still to come
	// (nil: every write's is).
	outcomes OutcomeSource
	// note records what the operator should know in the migration's
	// status (nil: the log only).
	note func(ctx context.Context, note string)

	mu      sync.Mutex
	workers map[string]*applyWorker
	// starting is held while a worker is added, and by betweenEntries
	// while it runs for a collection that has none yet.
	starting sync.Mutex
	// settled is the kept repairs (by journal sequence) repaired again
	// before the switch's hold (settle.go).
	settled map[uint64][2]string
	// ahead is how far the source's clock runs ahead of zdmd's, at least:
	// a write is committed before the proxy journals its answer, so its
	// commit time can pass the entry's time only by the clocks' offset.
	// The lag adds it back, so a source clock ahead never makes the lag
	// read low (or 0).
	ahead atomic.Int64
	// watch records the keys applied entries write while a switch runs.
	watch atomic.Pointer[keyWatch]
	// trimEvery is how often applied entries are removed from the
	// journal, one round behind (see trim).
	trimEvery time.Duration
	// retry paces the tries of an entry that does not apply, and the
	// restarts of a journal reader that stopped.
	retry retry.Policy
}

// DefaultTrimEvery is how often the applier trims the journal.
const DefaultTrimEvery = 30 * time.Second

// TrimEvery sets how often applied entries leave the journal (0: never).
func (a *Applier) TrimEvery(d time.Duration) *Applier {
	a.trimEvery = d
	return a
}

// sawEntry learns from e how far the source's clock runs ahead, at least.
func (a *Applier) sawEntry(e capture.Entry) {
	if e.Timestamp == 0 {
		return
	}
	d := int64(e.CommitTime().Sub(e.At))
	for {
		cur := a.ahead.Load()
		if d <= cur || a.ahead.CompareAndSwap(cur, d) {
			return
		}
	}
}

type applyWorker struct {
	// applying is held while the reader handles what it read: a repair
	// made outside the reader's order (settle.go) takes it, so that no
	// entry is applied between its read of the source and its write.
	applying sync.Mutex
	mu       sync.Mutex
	applied  uint64
	read     uint64    // the last entry the reader took
	ddl      uint64    // the last DDL entry applied (or repaired)
	oldest   time.Time // commit time of the oldest entry read, committed and not yet applied
	// queue is the reader's writes waiting for their outcomes, and what
	// waits behind them.
	queue  *outcomes
	pk     *schemapb.FieldSchema
	schema *schemapb.CollectionSchema // the target's, read with pk
}

// NewApplier returns an applier for migration id.
func NewApplier(id string, j capture.JournalLog, source, target *milvus.Conn, pos Positions, preserveKeys bool, eligible func(db, coll string) bool,
	onStuck func(error), logger *slog.Logger) *Applier {
	if logger == nil {
		logger = slog.Default()
	}
	return &Applier{id: id, journal: j, source: source, target: target, positions: pos, preserveKeys: preserveKeys, eligible: eligible,
		onStuck: onStuck, logger: logger, workers: map[string]*applyWorker{}, settled: map[uint64][2]string{}, trimEvery: DefaultTrimEvery, retry: DefaultApplyRetry(),
		stuckAfter: DefaultStuckAfter}
}

// OpenPasswords opens the passwords the capture sealed with s (see
// Capture.SealPasswords).
func (a *Applier) OpenPasswords(s capture.Sealer) *Applier {
	a.sealer = s
	return a
}

// AwaitOutcomes tells the applier which capture still runs: the capture of
// its own process, the only one that journals a migration's writes while
// its zdmd drives it. Its writes' outcomes are waited for, and taken from
// it when their entries do not land. A write of any other capture, whose
// outcome is not in the journal by the time the applier reads up to where
// the journal ended when it read the write, is repaired from the source.
// Without it, every outcome is waited for.
func (a *Applier) AwaitOutcomes(src OutcomeSource) *Applier {
	a.outcomes = src
	return a
}

// NoteTo records in the migration's status, through note, what the log
// warns of: a replayed call the target could not do as the source did.
func (a *Applier) NoteTo(note func(ctx context.Context, note string)) *Applier {
	a.note = note
	return a
}

// warn logs what the target could not do as the source did and notes it
// in the migration's status, where the operator looks.
func (a *Applier) warn(ctx context.Context, note string) {
	a.logger.Warn(note)
	if a.note != nil {
		a.note(ctx, note)
	}
}

func (a *Applier) positionKey(subject string) string { return subject }

func (a *Applier) position(ctx context.Context, subject string) uint64 {
	data, err := a.positions.Get(ctx, a.positionKey(subject))
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(string(data), 10, 64)
	return n
}

// Run discovers the journal's subjects and applies each eligible one until
// ctx ends.
func (a *Applier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	if t, ok := a.journal.(trimmer); ok && a.trimEvery > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.trim(ctx, t)
		}()
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		subjects, err := a.journal.Subjects(ctx, capture.JournalPrefix(a.id)+">")
		if err == nil {
			for subj := range subjects {
				db, coll, kind := capture.SubjectNames(a.id, subj)
				a.mu.Lock()
				_, running := a.workers[subj]
				a.mu.Unlock()
				if running || (kind == "collection" && !a.eligible(db, coll)) {
					continue
				}
				w := &applyWorker{applied: a.position(ctx, subj)}
				a.logger.Info("applying a journal subject", "subject", subj, "after", w.applied)
				a.addWorker(subj, w)
				wg.Add(1)
				go func() {
					defer wg.Done()
					a.follow(ctx, subj, w)
				}()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// addWorker adds subject's worker, once no betweenEntries runs for a
// collection without one.
func (a *Applier) addWorker(subject string, w *applyWorker) {
	a.starting.Lock()
	defer a.starting.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.workers[subject] = w
}

func (a *Applier) follow(ctx context.Context, subject string, w *applyWorker) {
	for stops := 1; ctx.Err() == nil; stops++ {
		var b *rowBatch
		queue := newOutcomes(a.outcomes)
		queue.spanOf = a.spanOf(ctx, w)
		w.mu.Lock()
		appliedAtStart := w.applied
		w.read, w.queue = appliedAtStart, queue
		w.mu.Unlock()
		fctx, rewind := context.WithCancel(ctx)
		rewound := a.rewindWhenOverdue(fctx, queue, rewind)
		err := a.journal.Follow(fctx, subject, appliedAtStart+1, func(seq uint64, data []byte, pending uint64) error {
			w.applying.Lock()
			defer w.applying.Unlock()
			e, err := capture.UnmarshalEntry(data)
			if err != nil {
				return fmt.Errorf("journal entry %d: %w", seq, err)
			}
			a.sawEntry(e)
			var last uint64
			if queue.foreign(e) {
				// Where the journal ends now bounds where the outcome of a
				// write of a capture that no longer runs can be.
				if last, err = a.journal.LastSeq(ctx, subject); err != nil {
					return err
				}
			}
			items := queue.read(seq, e, data, last)
			w.mu.Lock()
			w.read = seq
			for _, r := range items {
				if !r.skip {
					w.oldest = earliest(w.oldest, r.e.CommitTime())
				}
			}
			w.oldest = earliest(w.oldest, queue.oldest())
			w.mu.Unlock()
			for i, r := range items {
				// What waits behind it: the journal's next entries and the
				// ones ready with it. A write waiting for its outcome is
				// not counted: rows are batched while the journal has a
				// backlog, not while the newest write is being answered.
				behind := pending + uint64(len(items)-1-i)
				if err := a.handle(ctx, subject, w, &b, r, behind); err != nil {
					return err
				}
			}
			return nil
		})
		rewind()
		if rewound.Load() && ctx.Err() == nil {
			a.logger.Info("a journaled write's outcome did not land; applying it by the capture's word", "subject", subject)
			continue
		}
		if ctx.Err() == nil {
			a.logger.Warn("journal reader stopped; resuming", "subject", subject, "err", err)
			w.mu.Lock()
			if w.applied > appliedAtStart {
				stops = 1 // it made progress: this stop starts a new run of pauses
			}
			w.mu.Unlock()
			_ = a.retry.Wait(ctx, stops)
		}
	}
}

// trimmer is a journal that can remove entries.
type trimmer interface {
	Trim(ctx context.Context, subject string, seq uint64) error
}

// trim removes applied entries from the journal, so that its size follows
// the lag rather than the sync's age. It runs a round behind: each round
// removes what was applied at the previous one, so an entry leaves the
// journal a round after its position was stored.
func (a *Applier) trim(ctx context.Context, t trimmer) {
	tick := time.NewTicker(a.trimEvery)
	defer tick.Stop()
	behind := map[string]uint64{}  // subject: applied at the previous round
	trimmed := map[string]uint64{} // subject: trimmed up to
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		a.mu.Lock()
		now := make(map[string]uint64, len(a.workers))
		for subj, w := range a.workers {
			w.mu.Lock()
			now[subj] = w.applied
			w.mu.Unlock()
		}
		a.mu.Unlock()
		for subj, applied := range behind {
			if applied <= trimmed[subj] {
				continue
			}
			if err := t.Trim(ctx, subj, applied); err != nil {
				if ctx.Err() == nil {
					a.logger.Warn("journal not trimmed; it keeps applied entries until the next round", "subject", subj, "err", err)
				}
				continue
			}
			trimmed[subj] = applied
		}
		behind = now
	}
}

// done records that everything up to seq is applied; an entry applied
// before a write still waiting moves no position (seq is not past it).
func (a *Applier) done(ctx context.Context, subject string, w *applyWorker, seq uint64, commit time.Time, pending uint64) error {
	w.mu.Lock()
	moved := seq > w.applied
	w.mu.Unlock()
	if moved {
		if err := a.positions.Put(ctx, a.positionKey(subject), []byte(strconv.FormatUint(seq, 10))); err != nil {
			if ctx.Err() != nil {
				return err
			}
			// The entries are on the target; only the mark is not stored (a
			// full NATS store refuses it). Going on lets the trim free room,
			// and a restart from an older mark replays entries already
			// applied, in order, which ends in the same state.
			a.logger.Warn("apply position not stored; applying goes on", "subject", subject, "seq", seq, "err", err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.applied = max(w.applied, seq)
	w.oldest = w.queue.oldest()
	if pending > 0 {
		// The next entry is no older than this one.
		w.oldest = earliest(w.oldest, commit)
	}
	return nil
}

func (a *Applier) flush(ctx context.Context, subject string, w *applyWorker, b *rowBatch, pending uint64) error {
	err := a.untilApplied(ctx, fmt.Sprintf("%d rows of %s/%s", b.rows, b.db, b.coll), func(ctx context.Context) error {
		_, err := a.target.Upsert(ctx, b.db, b.coll, b.part, b.cols, b.rows)
		return err
	})
	if err != nil {
		return err
	}
	return a.done(ctx, subject, w, b.seq, b.commit, pending)
}

// applyRetrying applies an entry until it succeeds.
func (a *Applier) applyRetrying(ctx context.Context, w *applyWorker, e capture.Entry) error {
	return a.untilApplied(ctx, fmt.Sprintf("%s on %s/%s", e.Method, e.Database, e.Collection), func(ctx context.Context) error {
		return a.apply(ctx, w, e)
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
