package livesync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/milvus"
)

// sourceWait is a repair that cannot read the source. It is not the
// target's fault, and does not count towards a stuck apply.
type sourceWait struct{ err error }

func (e *sourceWait) Error() string {
	return "reading the source to repair an uncertain write: " + e.err.Error()
}

func (e *sourceWait) Unwrap() error { return e.err }

// untilApplied retries op with backoff until it succeeds or ctx ends; one
// that keeps failing for stuckAfter is reported as stuck, once (the lag
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
		if !reported && time.Since(began) > a.stuckAfter && a.onStuck != nil {
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
func (a *Applier) apply(ctx context.Context, w *applyWorker, e capture.Entry) error {
	msg := milvus.RequestMessage(e.Method)
	if e.Op == capture.OpHeartbeat || msg == nil {
		return nil
	}
	if err := proto.Unmarshal(e.Request, msg); err != nil {
		return fmt.Errorf("decode %s: %w", e.Method, err)
	}
	if e.Op == capture.OpUncertain {
		err := a.repair(ctx, w, e, msg)
		if err == nil {
			a.logger.Info("a write without a known outcome was repaired from the source", "method", e.Method,
				"collection", e.Database+"/"+e.Collection, "journaled", e.At)
		}
		return err
	}
	if err := capture.OpenPasswords(a.sealer, a.id, msg); err != nil {
		return err
	}
	if ok, err := a.applyAccess(ctx, e.Database, msg); ok {
		return err
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
		res, err := t.Svc.DropDatabase(t.In(ctx, ""), &milvuspb.DropDatabaseRequest{DbName: db})
		return milvus.Check("drop database "+db, res, err)
	case *milvuspb.CreateCollectionRequest:
		schema := &schemapb.CollectionSchema{}
		if err := proto.Unmarshal(r.GetSchema(), schema); err != nil {
			return err
		}
		props := milvus.KVMap(r.GetProperties())
		if a.preserveKeys {
			props = milvus.KeepKeys(schema, props)
		}
		return t.CreateCollection(ctx, db, schema, milvus.CollectionSettings{Shards: r.GetShardsNum(), Level: r.GetConsistencyLevel(),
			Properties: props, Partitions: r.GetNumPartitions()})
	case *milvuspb.DropCollectionRequest:
		if ok, err := t.HasCollection(ctx, db, coll); err != nil || !ok {
			return err
		}
		w.pk, w.schema = nil, nil
		res, err := t.Svc.DropCollection(t.In(ctx, db), &milvuspb.DropCollectionRequest{DbName: db, CollectionName: coll})
		return milvus.Check("drop collection "+coll, res, err)
	case *milvuspb.CreatePartitionRequest:
		return t.CreatePartition(ctx, db, coll, r.GetPartitionName())
	case *milvuspb.DropPartitionRequest:
		h, err := t.Svc.HasPartition(t.In(ctx, db), &milvuspb.HasPartitionRequest{DbName: db, CollectionName: coll, PartitionName: r.GetPartitionName()})
		if err := milvus.Check("has partition", h.GetStatus(), err); err != nil || !h.GetValue() {
			return err
		}
		_ = t.Release(ctx, db, coll) // a loaded partition cannot be dropped; the load is replayed after
		res, err := t.Svc.DropPartition(t.In(ctx, db), &milvuspb.DropPartitionRequest{DbName: db, CollectionName: coll, PartitionName: r.GetPartitionName()})
		return milvus.Check("drop partition", res, err)
	case *milvuspb.CreateIndexRequest:
		return t.CreateIndex(ctx, db, coll, milvus.Index{Name: r.GetIndexName(), Field: r.GetFieldName(), Params: milvus.KVMap(r.GetExtraParams())})
	case *milvuspb.DropIndexRequest:
		res, err := t.Svc.DropIndex(t.In(ctx, db), &milvuspb.DropIndexRequest{DbName: db, CollectionName: coll, FieldName: r.GetFieldName(), IndexName: r.GetIndexName()})
		if milvus.IsIndexMissing(res) {
			return nil
		}
		return milvus.Check("drop index", res, err)
	case *milvuspb.LoadCollectionRequest:
		return a.load(ctx, db, coll, nil, r)
	case *milvuspb.ReleaseCollectionRequest:
		return t.Release(ctx, db, coll)
	case *milvuspb.LoadPartitionsRequest:
		// What an application loads, the target loads too: after the
		// switch its queries find the same partitions loaded.
		return a.load(ctx, db, coll, r.GetPartitionNames(), r)
	case *milvuspb.ReleasePartitionsRequest:
		res, err := t.Svc.ReleasePartitions(t.In(ctx, db), &milvuspb.ReleasePartitionsRequest{DbName: db, CollectionName: coll, PartitionNames: r.GetPartitionNames()})
		return milvus.Check("release partitions of "+coll, res, err)
	}
	return nil
}

// load replays a load of a collection, or of its partitions parts, with
// the replicas and resource groups the client asked for; a target that
// cannot serve them loads with its defaults, and the log says so.
func (a *Applier) load(ctx context.Context, db, coll string, parts []string, req interface {
	GetReplicaNumber() int32
	GetResourceGroups() []string
}) error {
	note, err := a.target.LoadAs(ctx, db, coll, parts, milvus.Replicas{Number: req.GetReplicaNumber(), Groups: req.GetResourceGroups()})
	if note != "" {
		a.warn(ctx, note)
	}
	return err
}

// repair makes the target hold the source's current state of the keys an
// uncertain write touched. Applied in journal order, it is followed by the
// replay of every later write, so the result is what the source holds.
func (a *Applier) repair(ctx context.Context, w *applyWorker, e capture.Entry, msg proto.Message) error {
	col, err := a.repairedCollection(ctx, e.Database, e.Collection)
	if err != nil || col == nil {
		return err
	}
	keys, part, err := a.touchedKeys(ctx, e.Database, e.Collection, col, msg)
	if err != nil {
		return err
	}
	if keys.Len() == 0 {
		return a.repairWithoutKeys(ctx, e, col, part, false)
	}
	// A write may name more keys than one read of the source returns.
	for _, chunk := range keyChunks(keys, repairChunk) {
		if err := a.repairKeys(ctx, e.Database, e.Collection, col, part, chunk, e.Method != "Delete"); err != nil {
			return err
		}
	}
	return nil
}

// keyChunks splits keys into runs of at most n.
func keyChunks(keys milvus.Keys, n int) []milvus.Keys {
	var out []milvus.Keys
	for c := range slices.Chunk(keys.Ints, n) {
		out = append(out, milvus.Keys{Ints: c})
	}
	for c := range slices.Chunk(keys.Strs, n) {
		out = append(out, milvus.Keys{Strs: c})
	}
	return out
}

// repairedCollection describes the target's collection a repair writes
// (nil: the target has none, and there is nothing to repair).
func (a *Applier) repairedCollection(ctx context.Context, db, coll string) (*milvus.Collection, error) {
	if ok, err := a.target.HasCollection(ctx, db, coll); err != nil || !ok {
		return nil, err
	}
	return a.target.Structure(ctx, db, coll)
}

// touchedKeys returns the keys a write named, and the partition it wrote.
func (a *Applier) touchedKeys(ctx context.Context, db, coll string, col *milvus.Collection, msg proto.Message) (milvus.Keys, string, error) {
	pk := col.PrimaryField().GetName()
	switch r := msg.(type) {
	case *milvuspb.InsertRequest:
		return milvus.KeysOf(milvus.Column(r.GetFieldsData(), pk)), r.GetPartitionName(), nil
	case *milvuspb.UpsertRequest:
		return milvus.KeysOf(milvus.Column(r.GetFieldsData(), pk)), r.GetPartitionName(), nil
	case *milvuspb.DeleteRequest:
		// A delete by keys names them; for any other expression, the rows
		// it may have removed from the source are those still on the
		// target. Naming them saves a strong read of the target, which
		// waits for its next time tick while writes are held at the
		// switch.
		if keys, named := milvus.DeleteKeys(r.GetExpr(), pk); named {
			return keys, r.GetPartitionName(), nil
		}
		keys, err := a.keysMatching(ctx, db, coll, col.PrimaryField(), r.GetExpr())
		return keys, r.GetPartitionName(), err
	}
	return milvus.Keys{}, "", nil
}

// keysMatching returns every key of the target's rows that expr selects,
// a query window at a time: a delete by a filter can match more rows
// than one window holds.
func (a *Applier) keysMatching(ctx context.Context, db, coll string, pk *schemapb.FieldSchema, expr string) (milvus.Keys, error) {
	var all milvus.Keys
	var cursor *string
	for {
		where := "(" + expr + ")"
		if cursor != nil {
			where += " && " + milvus.KeyRange{}.Expr(pk, cursor)
		}
		cols, err := a.target.Query(ctx, db, coll, where, []string{pk.GetName()}, nil, milvus.QueryWindow)
		if err != nil {
			return all, err
		}
		page := milvus.KeysOf(milvus.Column(cols, pk.GetName()))
		all.Ints, all.Strs = append(all.Ints, page.Ints...), append(all.Strs, page.Strs...)
		if page.Len() < milvus.QueryWindow {
			// The target holds each key once: a short page is the last.
			return all, nil
		}
		strs := page.Strings()
		last := strs[len(strs)-1]
		cursor = &last
	}
}

// repairWithoutKeys repairs an uncertain write that named no keys: an
// insert the source gave keys to, or a delete that matched nothing on the
// target. again: it was repaired before, and writes are held for the
// switch.
func (a *Applier) repairWithoutKeys(ctx context.Context, e capture.Entry, col *milvus.Collection, part string, again bool) error {
	db, coll := e.Database, e.Collection
	if pkf := col.PrimaryField(); e.Method == "Insert" && pkf.GetDataType() == schemapb.DataType_Int64 && !pkf.GetAutoID() {
		return a.repairKeyless(ctx, db, coll, col, part, e.AfterKey, again)
	}
	if e.Method != "Delete" {
		a.warn(ctx, fmt.Sprintf("an insert into %s/%s with keys the source assigns has no known outcome (zdmd stopped, or the call broke off): "+
			"its rows may be on the source only; the check at the switch compares the counts", db, coll))
	}
	return nil
}

// repairKeys deletes from the target the keys the source lacks and, with
// restore, writes over it the source's rows of the others (upserted in
// partition part). A delete's keys the source holds are not restored: the
// target holds them as the source does unless a write of them is
// uncertain too.
//
// The source is read, and the keys it lacks deleted, in the partition the
// write named: a key can be held in several partitions with a row in each
// (an upsert into another partition keeps the old row), and a read of the
// whole collection returns any one of them.
func (a *Applier) repairKeys(ctx context.Context, db, coll string, col *milvus.Collection, part string, keys milvus.Keys, restore bool) error {
	pk := col.PrimaryField().GetName()
	in := writtenPartition(col, part, restore)
	var scope []string
	if in != "" {
		scope = []string{in}
	}
	found := map[string]bool{}
	var upsertErr error
	err := a.source.KeyRows(ctx, db, coll, pk, keys, milvus.OutputFields(col), scope, 0, func(rows []*schemapb.FieldData) error {
		for _, k := range milvus.KeysOf(milvus.Column(rows, pk)).Strings() {
			found[k] = true
		}
		if !restore {
			return nil
		}
		milvus.MarkDynamic(rows)
		milvus.FitArrays(rows, col.Schema)
		_, upsertErr = a.target.Upsert(ctx, db, coll, part, rows, milvus.Rows(rows))
		return upsertErr
	})
	switch {
	case upsertErr != nil:
		return upsertErr
	case err != nil:
		return &sourceWait{err}
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
		if _, err := a.target.Delete(ctx, db, coll, in, milvus.KeysFromStrings(keyType, gone).InExpr(pk)); err != nil {
			return err
		}
	}
	return nil
}

// rowsOf returns an insert or upsert entry's rows, with the keys the source
// assigned; ok is false for every other kind of entry.
func (a *Applier) rowsOf(ctx context.Context, w *applyWorker, e capture.Entry) (*rowSet, bool, error) {
	if e.Op != capture.OpInsert && e.Op != capture.OpUpsert {
		return nil, false, nil
	}
	msg := milvus.RequestMessage(e.Method)
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
	if err := a.keyField(ctx, w, e); err != nil {
		return nil, false, err
	}
	cols := r.GetFieldsData()
	if milvus.Column(cols, w.pk.GetName()) == nil && e.IDs != nil {
		if len(e.IDs.Strs) > 0 {
			cols = append(cols, milvus.VarCharColumn(w.pk.GetName(), e.IDs.Strs))
		} else {
			cols = append(cols, milvus.Int64Column(w.pk.GetName(), e.IDs.Ints))
		}
	}
	milvus.MarkDynamic(cols)
	milvus.FitArrays(cols, w.schema)
	keys := milvus.KeysOf(milvus.Column(cols, w.pk.GetName())).Strings()
	return &rowSet{db: e.Database, coll: e.Collection, part: r.GetPartitionName(), cols: cols, rows: int(r.GetNumRows()), keys: keys,
		bytes: len(e.Request)}, true, nil
}

// A try of an entry is bounded, first by firstAttempt, doubling with
// every retry up to lastAttempt. A Milvus 2.3 server that crashed and came
// back leaves strongly consistent reads unanswered for most of a minute,
// and a read sent then never returns; a slow but working target still
// gets all the time a large batch needs once the first tries timed out.
const (
	firstAttempt = 15 * time.Second
	lastAttempt  = 2 * time.Minute
)

// keyField reads, once, the key field and schema of the target's
// collection of w (e's).
func (a *Applier) keyField(ctx context.Context, w *applyWorker, e capture.Entry) error {
	if w.pk != nil {
		return nil
	}
	col, err := a.target.Structure(ctx, e.Database, e.Collection)
	if err != nil {
		return err
	}
	w.pk, w.schema = col.PrimaryField(), col.Schema
	return nil
}
