package milvus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/zdm-io/zdm/retry"
)

// Positions keeps how far each journal subject was applied.
type Positions interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, value []byte) error
}

// Applier replays one migration's journal onto its target: a reader per
// collection, in the order the source committed, collections in parallel.
type Applier struct {
	id           string
	journal      JournalLog
	source       *Conn // read to repair uncertain writes
	target       *Conn
	positions    Positions
	preserveKeys bool
	// eligible reports whether a collection's copy is finished, so its
	// writes may be applied.
	eligible func(db, coll string) bool
	onStuck  func(err error)
	logger   *slog.Logger

	mu      sync.Mutex
	workers map[string]*applyWorker
	// ahead is how far the source's clock runs ahead of zdmd's, at least:
	// a write is committed before the proxy journals its answer, so its
	// commit time can pass the entry's time only by the clocks' offset.
	// The lag adds it back, so a source clock ahead never makes the lag
	// read low (or 0).
	ahead atomic.Int64
	// trimEvery is how often applied entries are removed from the
	// journal, one round behind (see trim).
	trimEvery time.Duration
	// retry paces the tries of an entry that does not apply, and the
	// restarts of a journal reader that stopped.
	retry retry.Policy
}

// DefaultApplyRetry retries a write on the target 100 ms after its first
// failure, doubling up to 5 s, until it applies.
func DefaultApplyRetry() retry.Policy {
	return retry.Policy{First: 100 * time.Millisecond, Max: 5 * time.Second}
}

// Retry sets how an entry that does not apply is tried again; it is tried
// until it applies, whatever the policy's attempts.
func (a *Applier) Retry(p retry.Policy) *Applier {
	a.retry = p.Or(DefaultApplyRetry())
	a.retry.Attempts = 0
	return a
}

// DefaultTrimEvery is how often the applier trims the journal.
const DefaultTrimEvery = 30 * time.Second

// TrimEvery sets how often applied entries leave the journal (0: never).
func (a *Applier) TrimEvery(d time.Duration) *Applier {
	a.trimEvery = d
	return a
}

// sawEntry learns from e how far the source's clock runs ahead, at least.
func (a *Applier) sawEntry(e Entry) {
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
	mu      sync.Mutex
	applied uint64
	oldest  time.Time // commit time of the oldest entry not yet applied
	pk      *schemapb.FieldSchema
	schema  *schemapb.CollectionSchema // the target's, read with pk
}

// NewApplier returns an applier for migration id.
func NewApplier(id string, j JournalLog, source, target *Conn, pos Positions, preserveKeys bool, eligible func(db, coll string) bool,
	onStuck func(error), logger *slog.Logger) *Applier {
	if logger == nil {
		logger = slog.Default()
	}
	return &Applier{id: id, journal: j, source: source, target: target, positions: pos, preserveKeys: preserveKeys, eligible: eligible,
		onStuck: onStuck, logger: logger, workers: map[string]*applyWorker{}, trimEvery: DefaultTrimEvery, retry: DefaultApplyRetry()}
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
		subjects, err := a.journal.Subjects(ctx, JournalPrefix(a.id)+">")
		if err == nil {
			for subj := range subjects {
				db, coll, kind := subjectNames(a.id, subj)
				a.mu.Lock()
				_, running := a.workers[subj]
				a.mu.Unlock()
				if running || (kind == "collection" && !a.eligible(db, coll)) {
					continue
				}
				w := &applyWorker{applied: a.position(ctx, subj)}
				a.mu.Lock()
				a.workers[subj] = w
				a.mu.Unlock()
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

func (a *Applier) follow(ctx context.Context, subject string, w *applyWorker) {
	for stops := 1; ctx.Err() == nil; stops++ {
		var b *rowBatch
		err := a.journal.Follow(ctx, subject, w.applied+1, func(seq uint64, data []byte, pending uint64) error {
			e, err := UnmarshalEntry(data)
			if err != nil {
				return fmt.Errorf("journal entry %d: %w", seq, err)
			}
			a.sawEntry(e)
			w.mu.Lock()
			if w.oldest.IsZero() {
				w.oldest = e.CommitTime()
			}
			w.mu.Unlock()
			// Consecutive rows of one collection go as one upsert while
			// more entries wait; anything else first applies the batch.
			if rows, ok, err := a.rowsOf(ctx, w, e); err != nil {
				return err
			} else if ok {
				if b != nil && !b.fits(rows) {
					if err := a.flush(ctx, subject, w, b, pending); err != nil {
						return err
					}
					b = nil
				}
				if b == nil {
					b = newRowBatch(rows)
				} else {
					b.add(rows)
				}
				b.seq, b.commit = seq, e.CommitTime()
				if pending > 0 && b.rows < maxBatchRows {
					return nil
				}
				err := a.flush(ctx, subject, w, b, pending)
				b = nil
				return err
			}
			if b != nil {
				if err := a.flush(ctx, subject, w, b, 1); err != nil {
					return err
				}
				b = nil
			}
			if err := a.applyRetrying(ctx, w, e); err != nil {
				return err
			}
			return a.done(ctx, subject, w, seq, e.CommitTime(), pending)
		})
		if ctx.Err() == nil {
			a.logger.Warn("journal reader stopped; resuming", "subject", subject, "err", err)
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
// removes what was applied at the previous one. An intent is settled by
// its entry, and a zdmd that died leaves intents that the next start
// looks up in the journal before the applier runs; a round later, every
// intent of this process is swept, and no look-up needs those entries.
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

// done records that everything up to seq is applied.
func (a *Applier) done(ctx context.Context, subject string, w *applyWorker, seq uint64, commit time.Time, pending uint64) error {
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
	w.mu.Lock()
	defer w.mu.Unlock()
	w.applied = seq
	w.oldest = time.Time{}
	if pending > 0 {
		// The next entry is no older than this one.
		w.oldest = commit
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
func (a *Applier) applyRetrying(ctx context.Context, w *applyWorker, e Entry) error {
	return a.untilApplied(ctx, fmt.Sprintf("%s on %s/%s", e.Method, e.Database, e.Collection), func(ctx context.Context) error {
		return a.apply(ctx, w, e)
	})
}

// sourceWait is a repair that cannot read the source. It is not the
// target's fault, and does not count towards a stuck apply.
type sourceWait struct{ err error }

func (e *sourceWait) Error() string {
	return "reading the source to repair an uncertain write: " + e.err.Error()
}
func (e *sourceWait) Unwrap() error { return e.err }

// A try of an entry is bounded, first by firstAttempt, doubling with
// every retry up to lastAttempt. A Milvus 2.3 server that crashed and came
// back leaves strongly consistent reads unanswered for most of a minute,
// and a read sent then never returns; a slow but working target still
// gets all the time a large batch needs once the first tries timed out.
const (
	firstAttempt = 15 * time.Second
	lastAttempt  = 2 * time.Minute
)

// untilApplied retries op with backoff until it succeeds or ctx ends; one
// that keeps failing for two minutes is reported as stuck, once (the lag
// shows it too).
func (a *Applier) untilApplied(ctx context.Context, what string, op func(context.Context) error) error {
	began, reported, bound := time.Now(), false, firstAttempt
	for try := 1; ; try++ {
		actx, cancel := context.WithTimeout(ctx, bound)
		err := op(actx)
		if actx.Err() != nil && ctx.Err() == nil {
			bound = min(2*bound, lastAttempt) // it timed out: give the next more
		}
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		a.logger.Warn("apply failed; retrying", "migration", a.id, "what", what, "err", err)
		var wait *sourceWait
		if errors.As(err, &wait) {
			// The source is down or not yet serving reads again: the
			// applications cannot write either, and the repair goes on
			// when it is back (the lag shows the wait).
			began = time.Now()
		}
		if !reported && time.Since(began) > 2*time.Minute && a.onStuck != nil {
			reported = true
			a.onStuck(fmt.Errorf("%s cannot be applied to the target: %w", what, err))
		}
		if err := a.retry.Wait(ctx, try); err != nil {
			return err
		}
	}
}

// apply replays one entry; each kind is idempotent, so an entry applied
// again after a crash changes nothing.
func (a *Applier) apply(ctx context.Context, w *applyWorker, e Entry) error {
	msg := requestMessage(e.Method)
	if e.Op == OpHeartbeat || msg == nil {
		return nil
	}
	if err := proto.Unmarshal(e.Request, msg); err != nil {
		return fmt.Errorf("decode %s: %w", e.Method, err)
	}
	if e.Op == OpUncertain {
		return a.repair(ctx, w, e, msg)
	}
	t, db, coll := a.target, e.Database, e.Collection
	switch r := msg.(type) {
	case *milvuspb.DeleteRequest:
		_, err := t.Delete(ctx, db, coll, r.GetPartitionName(), r.GetExpr())
		return err
	case *milvuspb.CreateDatabaseRequest:
		return t.CreateDatabase(ctx, db)
	case *milvuspb.DropDatabaseRequest:
		dbs, err := t.Databases(ctx)
		if err != nil || !contains(dbs, db) {
			return err
		}
		res, err := t.svc.DropDatabase(t.In(ctx, ""), &milvuspb.DropDatabaseRequest{DbName: db})
		return check("drop database "+db, res, err)
	case *milvuspb.CreateCollectionRequest:
		schema := &schemapb.CollectionSchema{}
		if err := proto.Unmarshal(r.GetSchema(), schema); err != nil {
			return err
		}
		props := kvMap(r.GetProperties())
		if a.preserveKeys {
			props = keepKeys(schema, props)
		}
		return t.CreateCollection(ctx, db, schema, CollectionSettings{Shards: r.GetShardsNum(), Level: r.GetConsistencyLevel(),
			Properties: props, Partitions: r.GetNumPartitions()})
	case *milvuspb.DropCollectionRequest:
		if ok, err := t.HasCollection(ctx, db, coll); err != nil || !ok {
			return err
		}
		w.pk, w.schema = nil, nil
		res, err := t.svc.DropCollection(t.In(ctx, db), &milvuspb.DropCollectionRequest{DbName: db, CollectionName: coll})
		return check("drop collection "+coll, res, err)
	case *milvuspb.CreatePartitionRequest:
		return t.CreatePartition(ctx, db, coll, r.GetPartitionName())
	case *milvuspb.DropPartitionRequest:
		h, err := t.svc.HasPartition(t.In(ctx, db), &milvuspb.HasPartitionRequest{DbName: db, CollectionName: coll, PartitionName: r.GetPartitionName()})
		if err := check("has partition", h.GetStatus(), err); err != nil || !h.GetValue() {
			return err
		}
		_ = t.Release(ctx, db, coll) // a loaded partition cannot be dropped; the load is replayed after
		res, err := t.svc.DropPartition(t.In(ctx, db), &milvuspb.DropPartitionRequest{DbName: db, CollectionName: coll, PartitionName: r.GetPartitionName()})
		return check("drop partition", res, err)
	case *milvuspb.CreateIndexRequest:
		return t.CreateIndex(ctx, db, coll, Index{Name: r.GetIndexName(), Field: r.GetFieldName(), Params: kvMap(r.GetExtraParams())})
	case *milvuspb.DropIndexRequest:
		res, err := t.svc.DropIndex(t.In(ctx, db), &milvuspb.DropIndexRequest{DbName: db, CollectionName: coll, FieldName: r.GetFieldName(), IndexName: r.GetIndexName()})
		if isIndexMissing(res) {
			return nil
		}
		return check("drop index", res, err)
	case *milvuspb.LoadCollectionRequest:
		return t.Load(ctx, db, coll)
	case *milvuspb.ReleaseCollectionRequest:
		return t.Release(ctx, db, coll)
	}
	return nil
}

// repair makes the target hold the source's current state of the keys an
// uncertain write touched. Applied in journal order, it is followed by the
// replay of every later write, so the result is what the source holds.
func (a *Applier) repair(ctx context.Context, w *applyWorker, e Entry, msg proto.Message) error {
	db, coll := e.Database, e.Collection
	if ok, err := a.target.HasCollection(ctx, db, coll); err != nil || !ok {
		return err
	}
	col, err := a.target.Structure(ctx, db, coll)
	if err != nil {
		return err
	}
	pk := col.PrimaryField().GetName()
	var keys Keys
	part := ""
	switch r := msg.(type) {
	case *milvuspb.InsertRequest:
		keys, part = KeysOf(Column(r.GetFieldsData(), pk)), r.GetPartitionName()
	case *milvuspb.UpsertRequest:
		keys, part = KeysOf(Column(r.GetFieldsData(), pk)), r.GetPartitionName()
	case *milvuspb.DeleteRequest:
		// Rows the delete may have removed from the source are still on
		// the target.
		cols, err := a.target.Query(ctx, db, coll, r.GetExpr(), []string{pk}, nil, queryWindow)
		if err != nil {
			return err
		}
		keys = KeysOf(Column(cols, pk))
	}
	if keys.Len() == 0 {
		if e.Method != "Delete" {
			a.logger.Warn("an insert with keys the source assigns has no known outcome; its rows may be on the source only",
				"collection", db+"/"+coll)
		}
		return nil
	}
	rows, err := a.source.Query(ctx, db, coll, keys.InExpr(pk), outputFields(col), nil, int64(keys.Len()))
	if err != nil {
		return &sourceWait{err}
	}
	found := map[string]bool{}
	for _, k := range KeysOf(Column(rows, pk)).Strings() {
		found[k] = true
	}
	if n := Rows(rows); n > 0 && e.Method != "Delete" {
		markDynamic(rows)
		FitArrays(rows, col.Schema)
		if _, err := a.target.Upsert(ctx, db, coll, part, rows, n); err != nil {
			return err
		}
	}
	var gone []string
	for _, k := range keys.Strings() {
		if !found[k] {
			gone = append(gone, k)
		}
	}
	if len(gone) > 0 {
		keyType := "int64"
		if len(keys.Strs) > 0 {
			keyType = "varchar"
		}
		if _, err := a.target.Delete(ctx, db, coll, "", keysFromStrings(keyType, gone).InExpr(pk)); err != nil {
			return err
		}
	}
	return nil
}

// rowsOf returns an insert or upsert entry's rows, with the keys the source
// assigned; ok is false for every other kind of entry.
func (a *Applier) rowsOf(ctx context.Context, w *applyWorker, e Entry) (*rowSet, bool, error) {
	if e.Op != OpInsert && e.Op != OpUpsert {
		return nil, false, nil
	}
	msg := requestMessage(e.Method)
	if err := proto.Unmarshal(e.Request, msg); err != nil {
		return nil, false, fmt.Errorf("decode %s: %w", e.Method, err)
	}
	r, ok := msg.(interface {
		GetFieldsData() []*schemapb.FieldData
		GetNumRows() uint32
		GetPartitionName() string
	})
	if !ok {
		return nil, false, nil
	}
	if w.pk == nil {
		col, err := a.target.Structure(ctx, e.Database, e.Collection)
		if err != nil {
			return nil, false, err
		}
		w.pk, w.schema = col.PrimaryField(), col.Schema
	}
	cols := r.GetFieldsData()
	if Column(cols, w.pk.GetName()) == nil && e.IDs != nil {
		if len(e.IDs.Strs) > 0 {
			cols = append(cols, VarCharColumn(w.pk.GetName(), e.IDs.Strs))
		} else {
			cols = append(cols, Int64Column(w.pk.GetName(), e.IDs.Ints))
		}
	}
	markDynamic(cols)
	FitArrays(cols, w.schema)
	keys := KeysOf(Column(cols, w.pk.GetName())).Strings()
	return &rowSet{db: e.Database, coll: e.Collection, part: r.GetPartitionName(), cols: cols, rows: int(r.GetNumRows()), keys: keys}, true, nil
}

// Lag is now minus the commit time of the oldest journaled write not yet
// applied, over every subject (0 when nothing is pending).
func (a *Applier) Lag(ctx context.Context, now time.Time) (float64, error) {
	subjects, err := a.journal.Subjects(ctx, JournalPrefix(a.id)+">")
	if err != nil {
		return 0, err
	}
	var oldest time.Time
	for subj := range subjects {
		a.mu.Lock()
		w, ok := a.workers[subj]
		a.mu.Unlock()
		var t time.Time
		if ok {
			w.mu.Lock()
			t = w.oldest
			applied := w.applied
			w.mu.Unlock()
			if t.IsZero() {
				t, err = a.nextCommit(ctx, subj, applied)
			}
		} else {
			t, err = a.nextCommit(ctx, subj, a.position(ctx, subj))
		}
		if err != nil {
			return 0, err
		}
		if !t.IsZero() && (oldest.IsZero() || t.Before(oldest)) {
			oldest = t
		}
	}
	if oldest.IsZero() {
		return 0, nil
	}
	// Both in zdmd's clock: the source's commit time less its lead.
	oldest = oldest.Add(-time.Duration(a.ahead.Load()))
	if !now.After(oldest) {
		return 0, nil
	}
	return now.Sub(oldest).Seconds(), nil
}

func (a *Applier) nextCommit(ctx context.Context, subject string, applied uint64) (time.Time, error) {
	_, data, ok, err := a.journal.Next(ctx, subject, applied+1)
	if err != nil || !ok {
		return time.Time{}, err
	}
	e, err := UnmarshalEntry(data)
	if err != nil {
		return time.Time{}, err
	}
	a.sawEntry(e)
	return e.CommitTime(), nil
}

// Drained reports whether every entry up to fence is applied.
func (a *Applier) Drained(ctx context.Context, fence uint64) (bool, error) {
	subjects, err := a.journal.Subjects(ctx, JournalPrefix(a.id)+">")
	if err != nil {
		return false, err
	}
	for subj := range subjects {
		a.mu.Lock()
		w, ok := a.workers[subj]
		a.mu.Unlock()
		applied := a.position(ctx, subj)
		if ok {
			w.mu.Lock()
			applied = max(applied, w.applied)
			w.mu.Unlock()
		}
		seq, _, found, err := a.journal.Next(ctx, subj, applied+1)
		if err != nil {
			return false, err
		}
		if found && seq <= fence {
			return false, nil
		}
	}
	return true, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
