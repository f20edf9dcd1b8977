package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/domain/domaintest"
	"github.com/zdm-io/zdm/eventstore/estest"
)

// countingLog counts the records each load reads.
type countingLog struct {
	EventLog
	read atomic.Int64
}

func (l *countingLog) Load(ctx context.Context, subject string, after uint64) ([]domain.Record, uint64, error) {
	recs, last, err := l.EventLog.Load(ctx, subject, after)
	l.read.Add(int64(len(recs)))
	return recs, last, err
}

// A week of sync at the default intervals, loaded from a snapshot plus the
// events after it, is the aggregate a full replay folds, and the load
// reads only those events.
func TestASnapshotLoadedMigrationEqualsAFullReplay(t *testing.T) {
	ctx := context.Background()
	srv := estest.Start(t)
	store := srv.Store(t)
	snapshots, err := store.KV(ctx, "ZDM_SNAPSHOTS")
	if err != nil {
		t.Fatal(err)
	}
	const id = "mig-week"
	subj, _ := domain.MigrationStream(id)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	week, err := domaintest.SyncHistory(id, start, 20, 7*24*time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// The history stays a history: a sample a minute and the crossings,
	// not one a second.
	events := 0
	for _, b := range week {
		events += len(b.Events)
	}
	if events > 7*24*60+300 {
		t.Fatalf("a week of sync holds %d events", events)
	}
	var seq uint64
	appendAll := func(batches []domain.Batch) {
		t.Helper()
		for _, b := range batches {
			if seq, err = store.Append(ctx, subj, seq, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendAll(week)

	fresh := func(snaps Snapshots) (*repository[*domain.Migration], *countingLog) {
		log := &countingLog{EventLog: store}
		return newRepository(log, snaps, SystemClock{}, DefaultStoreRetry(), domain.MigrationStream, domain.NewMigration), log
	}
	// The first load replays everything and leaves a snapshot.
	first, _ := fresh(snapshots)
	began := time.Now()
	if _, err := first.Get(ctx, id); err != nil {
		t.Fatal(err)
	}
	t.Logf("full replay of %d events: %s", events, time.Since(began))
	if _, err := snapshots.Get(ctx, subj); err != nil {
		t.Fatalf("no snapshot after a load of %d events: %v", events, err)
	}
	// More of the sync, then the operator stops it.
	m, _ := first.Get(ctx, id)
	var tail []domain.Batch
	at := m.Lag.At
	for i := range 30 {
		at = at.Add(time.Minute)
		evs, err := domain.Decide(m, domain.SampleLag{LagSeconds: float64(i % 9), Now: at})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if err := m.Apply(domain.Record{Seq: m.Seq() + 1, At: at, Event: e}); err != nil {
				t.Fatal(err)
			}
		}
		tail = append(tail, domain.Batch{Actor: SystemActor, At: at, Events: evs})
	}
	tail = append(tail, domain.Batch{Actor: "olga", At: at.Add(time.Second), Events: []domain.Event{domain.SyncStopped{ConfirmedBy: "olga", Forced: true, LagSeconds: 8}}})
	appendAll(tail)

	fromSnapshot, log := fresh(snapshots)
	began = time.Now()
	got, err := fromSnapshot.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("load from the snapshot: %s, %d events read", time.Since(began), log.read.Load())
	if n := log.read.Load(); n > int64(len(tail))+1 {
		t.Fatalf("the load from a snapshot read %d events; %d follow the snapshot", n, len(tail))
	}
	replayed, _ := fresh(nil)
	want, err := replayed.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want.State != domain.StateSyncStopped || want.Seq() != seq {
		t.Fatalf("the full replay ends in %s at seq %d, want sync_stopped at %d", want.State, want.Seq(), seq)
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	if string(a) != string(b) {
		t.Fatalf("snapshot-loaded aggregate differs from the full replay:\n%s\n%s", a, b)
	}
	// The restored state machine decides as the replayed one does.
	for _, typ := range domain.MigrationEventTypes() {
		if got.Can(typ) != want.Can(typ) {
			t.Fatalf("after a snapshot load, %s allowed = %v; after a replay, %v", typ, got.Can(typ), want.Can(typ))
		}
	}
}

// A snapshot ahead of the log (the log restored from an older copy) is
// ignored: only the log counts.
func TestASnapshotAheadOfTheLogIsIgnored(t *testing.T) {
	ctx := context.Background()
	store := estest.Start(t).Store(t)
	snapshots, err := store.KV(ctx, "ZDM_SNAPSHOTS")
	if err != nil {
		t.Fatal(err)
	}
	const id = "mig-ahead"
	subj, _ := domain.MigrationStream(id)
	week, err := domaintest.SyncHistory(id, time.Unix(0, 0).UTC(), 1, time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var seq uint64
	for _, b := range week[:8] {
		if seq, err = store.Append(ctx, subj, seq, b); err != nil {
			t.Fatal(err)
		}
	}
	ahead, err := domain.NewMigration().Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	_ = json.Unmarshal(ahead, &raw)
	raw["aggregate"].(map[string]any)["Version"] = seq + 1000
	raw["aggregate"].(map[string]any)["State"] = string(domain.StateSwitchedOver)
	ahead, _ = json.Marshal(raw)
	if err := snapshots.Put(ctx, subj, ahead); err != nil {
		t.Fatal(err)
	}
	r := newRepository(EventLog(store), snapshots, SystemClock{}, DefaultStoreRetry(), domain.MigrationStream, domain.NewMigration)
	m, err := r.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if m.Seq() != seq || m.State != domain.StateCopying {
		t.Fatalf("loaded %s at seq %d, want copying at %d from the log", m.State, m.Seq(), seq)
	}
}

// Ids that name nothing leave nothing behind, and an aggregate's commands
// still run one at a time: a lock lives while it is held or awaited.
func TestLocksLiveOnlyWhileHeldOrAwaited(t *testing.T) {
	ctx := context.Background()
	store := estest.Start(t).Store(t)
	r := newRepository(EventLog(store), nil, SystemClock{}, DefaultStoreRetry(), domain.MigrationStream, domain.NewMigration)
	for i := range 500 {
		if _, err := r.Get(ctx, fmt.Sprintf("mig-none-%d", i)); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("get of an unknown id: %v", err)
		}
	}
	var inside atomic.Int32
	var shared atomic.Bool
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release := r.lock("mig-busy")
			if inside.Add(1) > 1 {
				shared.Store(true)
			}
			time.Sleep(2 * time.Millisecond)
			inside.Add(-1)
			release()
		}()
	}
	wg.Wait()
	if shared.Load() {
		t.Fatal("two holders of one aggregate's lock at once")
	}
	r.mu.Lock()
	left := len(r.locks)
	r.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d locks left after every command ended", left)
	}
}
