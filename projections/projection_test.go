package projections

import (
	"context"
	"testing"
	"time"

	"github.com/zdm-io/zdm/domain"
)

type memStore struct{ m map[string][]byte }

func (s *memStore) Put(_ context.Context, k string, v []byte) error { s.m[k] = v; return nil }
func (s *memStore) All(context.Context) (map[string][]byte, error)  { return s.m, nil }
func (s *memStore) Reset(context.Context) error                     { s.m = map[string][]byte{}; return nil }

func TestMigrationViewFoldsProgressAndSkipsRedelivery(t *testing.T) {
	ctx := context.Background()
	store := &memStore{m: map[string][]byte{}}
	p := NewMigrations(store)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	subj := domain.MigrationSubject + "m1"
	msgs := [][]domain.Record{
		{{Seq: 1, At: t0, Event: domain.MigrationRequested{ID: "m1", Organization: "acme", Options: domain.Options{}.WithDefaults()}}},
		{{Seq: 2, At: t0, Event: domain.CopyStarted{Collections: []domain.CollectionPlan{{Database: "db", Collection: "a", Rows: 300}}}}},
		{{Seq: 3, At: t0.Add(10 * time.Second), Event: domain.BulkCopyProgressed{Database: "db", Collection: "a", Range: "r0", Rows: 100}}},
	}
	for _, m := range msgs {
		if err := p.Handle(ctx, subj, m); err != nil {
			t.Fatal(err)
		}
	}
	// Redelivered after a crash before the ack: applied once.
	if err := p.Handle(ctx, subj, msgs[2]); err != nil {
		t.Fatal(err)
	}
	v, ok := p.Get("m1")
	if !ok || v.Progress.RowsCopied != 100 || v.Events != 3 {
		t.Fatalf("view: %+v", v.Progress)
	}
	if v.Progress.RowsPerSecond != 10 || v.Progress.ETASeconds == nil || *v.Progress.ETASeconds != 20 {
		t.Fatalf("rate %v eta %v", v.Progress.RowsPerSecond, v.Progress.ETASeconds)
	}
	// Read 90 s after that checkpoint with none since (a stalled copy):
	// the rate falls and the time left grows, in total and per collection.
	stalled := *v
	stalled.Progress.Collections = append([]CollectionView(nil), v.Progress.Collections...)
	stalled.RatesAt(t0.Add(100 * time.Second))
	if c := stalled.Progress.Collections[0]; stalled.State != domain.StateCopying || stalled.Progress.RowsPerSecond != 1 ||
		*stalled.Progress.ETASeconds != 200 || c.RowsPerSecond != 1 || *c.ETASeconds != 200 {
		t.Fatalf("as of 100 s: state %s, rate %v eta %v, collection %v eta %v", stalled.State, stalled.Progress.RowsPerSecond,
			*stalled.Progress.ETASeconds, c.RowsPerSecond, *c.ETASeconds)
	}
	if v.Stage != "migration" || v.Stages[0].Status != "done" || v.Stages[1].Status != "running" || v.Stages[2].Status != "pending" {
		t.Fatalf("stages: %+v", v.Stages)
	}
	// The stored view reloads to the same thing.
	q := NewMigrations(store)
	if err := q.Load(ctx, false); err != nil {
		t.Fatal(err)
	}
	if w, _ := q.Get("m1"); w.Seq != 3 || w.Progress.RowsCopied != 100 {
		t.Fatalf("reloaded: %+v", w)
	}
	// The switch's pause shows with its parts.
	_ = p.Handle(ctx, subj, []domain.Record{{Seq: 4, At: t0, Event: domain.SwitchedOver{TargetEndpoint: "t:1", WritePauseMS: 300, DrainMS: 40, CheckMS: 250}}})
	if v, _ := p.Get("m1"); v.WritePauseMS == nil || *v.WritePauseMS != 300 || v.WritePause == nil || *v.WritePause != (WritePause{DrainMS: 40, CheckMS: 250}) {
		t.Fatalf("write pause: %v %+v", v.WritePauseMS, v.WritePause)
	}
	// A switch recorded before the pause was split shows no split.
	old := NewMigrations(&memStore{m: map[string][]byte{}})
	_ = old.Handle(ctx, subj, []domain.Record{msgs[0][0], {Seq: 2, At: t0, Event: domain.SwitchedOver{TargetEndpoint: "t:1", WritePauseMS: 300}}})
	if v, _ := old.Get("m1"); v.WritePauseMS == nil || v.WritePause != nil {
		t.Fatalf("old switch: %v %+v", v.WritePauseMS, v.WritePause)
	}
	for i := 0; i < LagHistoryLength+50; i++ {
		_ = p.Handle(ctx, subj, []domain.Record{{Seq: uint64(10 + i), At: t0, Event: domain.LagSampled{LagSeconds: float64(i)}}})
	}
	if v, _ := p.Get("m1"); len(v.LagHistory) != LagHistoryLength || v.MaxLagSeconds != float64(LagHistoryLength+49) {
		t.Fatalf("lag history %d, max %v", len(v.LagHistory), v.MaxLagSeconds)
	}
}

func TestAFinishedCopyShowsWhatItCopiedAndItsAverageRate(t *testing.T) {
	v := viewOf(t,
		domain.MigrationRequested{ID: "m1", Organization: "acme", Options: domain.Options{}.WithDefaults()},
		// Planned: 300 and 200 rows.
		domain.CopyStarted{Collections: []domain.CollectionPlan{{Database: "db", Collection: "a", Rows: 300}, {Database: "db", Collection: "b", Rows: 200}}},
		domain.BulkCopyProgressed{Database: "db", Collection: "a", Range: "r0", Rows: 150},
		// Rows deleted during the copy (or keys held twice) were not read.
		domain.BulkCopyProgressed{Database: "db", Collection: "a", Range: "r1", Rows: 144, Done: true},
		// Rows written during the copy were.
		domain.BulkCopyProgressed{Database: "db", Collection: "b", Range: "r0", Rows: 210, Done: true},
	)
	if v.Progress.RowsCopied != 504 || v.Progress.RowsTotal != 504 {
		t.Fatalf("copied %d of %d", v.Progress.RowsCopied, v.Progress.RowsTotal)
	}
	for _, c := range v.Progress.Collections {
		if !c.Done || c.RowsCopied != c.RowsTotal || c.RowsPerSecond <= 0 || c.ETASeconds == nil || *c.ETASeconds != 0 {
			t.Errorf("%s: %d of %d, %v rows/s, eta %v", c.Collection, c.RowsCopied, c.RowsTotal, c.RowsPerSecond, c.ETASeconds)
		}
	}
	// a's copy: 294 rows from the copy's start (t0+10s) to its end (t0+30s).
	if a := v.Progress.Collections[0]; a.RowsPerSecond != 294.0/20 {
		t.Errorf("a's average rate: %v", a.RowsPerSecond)
	}
}

func TestACollectionsPlanReplacesThePreflightsEstimate(t *testing.T) {
	v := viewOf(t,
		domain.MigrationRequested{ID: "m1", Organization: "acme", Options: domain.Options{}.WithDefaults()},
		domain.CopyStarted{Collections: []domain.CollectionPlan{{Database: "db", Collection: "a", Rows: 300}, {Database: "db", Collection: "b", Rows: 200}}},
		domain.BulkCopyProgressed{Database: "db", Collection: "a", Plan: &domain.CollectionPlan{Rows: 280, Ranges: []string{"r0", "r1"}}},
		domain.BulkCopyProgressed{Database: "db", Collection: "a", Range: "r0", Rows: 140},
	)
	a := v.Progress.Collections[0]
	if v.Progress.RowsTotal != 480 || a.RowsTotal != 280 || a.RowsCopied != 140 || a.Ranges != 1 || a.Done {
		t.Fatalf("total %d; a: %d of %d in %d ranges, done %v", v.Progress.RowsTotal, a.RowsCopied, a.RowsTotal, a.Ranges, a.Done)
	}
}

func TestASegmentCopyShowsItsSegmentsAndBytes(t *testing.T) {
	v := viewOf(t,
		domain.MigrationRequested{ID: "m1", Organization: "acme", Options: domain.Options{}.WithDefaults()},
		domain.CopyStarted{Collections: []domain.CollectionPlan{{Database: "db", Collection: "a", Rows: 300}}},
		domain.BulkCopyProgressed{Database: "db", Collection: "a", Plan: &domain.CollectionPlan{Rows: 300, Ranges: []string{"segment/1/2/3", "segment/1/2/4", "import/1/2/_default"}}},
		domain.BulkCopyProgressed{Database: "db", Collection: "a", Range: "segment/1/2/3", Bytes: 1 << 20},
		domain.BulkCopyProgressed{Database: "db", Collection: "a", Range: "segment/1/2/4", Bytes: 1 << 19},
		domain.BulkCopyProgressed{Database: "db", Collection: "a", Range: "import/1/2/_default", Rows: 300, Done: true},
	)
	a := v.Progress.Collections[0]
	if v.Progress.SegmentsCopied != 2 || v.Progress.BytesCopied != 3<<19 || a.Segments != 2 || a.Bytes != 3<<19 || a.RowsCopied != 300 || !a.Done {
		t.Fatalf("progress: %+v", v.Progress)
	}
}

// viewOf folds events of migration m1, ten seconds apart, into its view.
func viewOf(t *testing.T, events ...domain.Event) *MigrationView {
	t.Helper()
	p := NewMigrations(&memStore{m: map[string][]byte{}})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, e := range events {
		r := domain.Record{Seq: uint64(i + 1), At: t0.Add(time.Duration(i) * 10 * time.Second), Event: e}
		if err := p.Handle(context.Background(), domain.MigrationSubject+"m1", []domain.Record{r}); err != nil {
			t.Fatal(err)
		}
	}
	v, _ := p.Get("m1")
	return v
}

func TestTheViewShowsTheNotesInTheirOrder(t *testing.T) {
	v := viewOf(t,
		domain.MigrationRequested{ID: "m1", Organization: "acme", Options: domain.Options{}.WithDefaults()},
		domain.Noted{Note: "first"},
		domain.Noted{Note: "second"},
	)
	if len(v.Notes) != 2 || v.Notes[0].Note != "first" || v.Notes[1].Note != "second" || v.Notes[0].At.IsZero() {
		t.Fatalf("notes %+v", v.Notes)
	}
}
