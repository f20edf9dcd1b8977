package milvus

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
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
}

type applyWorker struct {
	mu      sync.Mutex
	applied uint64
	oldest  time.Time // commit time of the oldest entry not yet applied
	pk      *schemapb.FieldSchema
}

// NewApplier returns an applier for migration id.
func NewApplier(id string, j JournalLog, target *Conn, pos Positions, preserveKeys bool, eligible func(db, coll string) bool,
	onStuck func(error), logger *slog.Logger) *Applier {
	return &Applier{id: id, journal: j, target: target, positions: pos, preserveKeys: preserveKeys, eligible: eligible,
		onStuck: onStuck, logger: logger, workers: map[string]*applyWorker{}}
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
	for ctx.Err() == nil {
		err := a.journal.Follow(ctx, subject, w.applied+1, func(seq uint64, data []byte, pending uint64) error {
			var e Entry
			if err := json.Unmarshal(data, &e); err != nil {
				return fmt.Errorf("journal entry %d: %w", seq, err)
			}
			w.mu.Lock()
			if w.oldest.IsZero() {
				w.oldest = e.CommitTime()
			}
			w.mu.Unlock()
			if err := a.applyRetrying(ctx, w, e); err != nil {
				return err
			}
			if err := a.positions.Put(ctx, a.positionKey(subject), []byte(strconv.FormatUint(seq, 10))); err != nil {
				return err
			}
			w.mu.Lock()
			w.applied = seq
			w.oldest = time.Time{}
			if pending > 0 {
				// The next entry is no older than this one.
				w.oldest = e.CommitTime()
			}
			w.mu.Unlock()
			return nil
		})
		if ctx.Err() == nil {
			a.logger.Warn("journal reader stopped; resuming", "subject", subject, "err", err)
			time.Sleep(time.Second)
		}
	}
}

// applyRetrying applies an entry until it succeeds; an entry that keeps
// failing for two minutes is reported as stuck (the lag shows it too).
func (a *Applier) applyRetrying(ctx context.Context, w *applyWorker, e Entry) error {
	began, pause, reported := time.Now(), 100*time.Millisecond, false
	for {
		err := a.apply(ctx, w, e)
		if err == nil || ctx.Err() != nil {
			return err
		}
		a.logger.Warn("apply failed; retrying", "migration", a.id, "op", e.Op, "method", e.Method, "collection", e.Database+"/"+e.Collection, "err", err)
		if !reported && time.Since(began) > 2*time.Minute && a.onStuck != nil {
			reported = true
			a.onStuck(fmt.Errorf("%s on %s/%s cannot be applied to the target: %w", e.Method, e.Database, e.Collection, err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(pause*2, 5*time.Second)
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
	t, db, coll := a.target, e.Database, e.Collection
	switch r := msg.(type) {
	case *milvuspb.InsertRequest:
		return a.upsertRows(ctx, w, db, coll, r.GetPartitionName(), r.GetFieldsData(), int(r.GetNumRows()), e.IDs)
	case *milvuspb.UpsertRequest:
		return a.upsertRows(ctx, w, db, coll, r.GetPartitionName(), r.GetFieldsData(), int(r.GetNumRows()), e.IDs)
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
		for _, f := range schema.GetFields() {
			if f.GetIsPrimaryKey() && f.GetAutoID() && a.preserveKeys {
				f.AutoID = false
			}
		}
		return t.CreateCollection(ctx, db, schema, r.GetShardsNum(), r.GetConsistencyLevel(), kvMap(r.GetProperties()))
	case *milvuspb.DropCollectionRequest:
		if ok, err := t.HasCollection(ctx, db, coll); err != nil || !ok {
			return err
		}
		w.pk = nil
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

// upsertRows writes captured rows with the keys the source assigned.
func (a *Applier) upsertRows(ctx context.Context, w *applyWorker, db, coll, part string, cols []*schemapb.FieldData, rows int, ids *Keys) error {
	if w.pk == nil {
		col, err := a.target.DescribeCollection(ctx, db, coll)
		if err != nil {
			return err
		}
		w.pk = col.PrimaryField()
	}
	if Column(cols, w.pk.GetName()) == nil && ids != nil {
		// An autoID key the source assigned: the target's field keeps it.
		if len(ids.Strs) > 0 {
			cols = append(cols, VarCharColumn(w.pk.GetName(), ids.Strs))
		} else {
			cols = append(cols, Int64Column(w.pk.GetName(), ids.Ints))
		}
	}
	markDynamic(cols)
	_, err := a.target.Upsert(ctx, db, coll, part, cols, rows)
	return err
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
	if oldest.IsZero() || !now.After(oldest) {
		return 0, nil
	}
	return now.Sub(oldest).Seconds(), nil
}

func (a *Applier) nextCommit(ctx context.Context, subject string, applied uint64) (time.Time, error) {
	_, data, ok, err := a.journal.Next(ctx, subject, applied+1)
	if err != nil || !ok {
		return time.Time{}, err
	}
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return time.Time{}, err
	}
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
