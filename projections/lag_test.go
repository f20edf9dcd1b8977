package projections

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// The per-second series keeps the latest sample and the highest, a point
// per LagHistoryStep up to LagHistoryLength, survives a restart through
// its store, and shows in a status only where it is newer than the
// history's own sample.
func TestTheLagSeriesKeepsEverySecondOutOfTheHistory(t *testing.T) {
	ctx := context.Background()
	store := &memStore{m: map[string][]byte{}}
	s := NewLagSeries(store, slog.Default())
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seconds := int(LagHistoryStep/time.Second) * (LagHistoryLength + 40)
	for i := range seconds {
		lag := 1.0
		if i == 123 {
			lag = 42 // one spike, between two kept points
		}
		s.ObserveLag(ctx, "m1", t0.Add(time.Duration(i)*time.Second), lag)
	}
	l, ok := s.Get("m1")
	if !ok || l.Max != 42 || l.Seconds != 1 || !l.At.Equal(t0.Add(time.Duration(seconds-1)*time.Second)) {
		t.Fatalf("series: latest %v at %s, max %v", l.Seconds, l.At, l.Max)
	}
	if len(l.History) != LagHistoryLength {
		t.Fatalf("history holds %d points, want %d", len(l.History), LagHistoryLength)
	}
	for i := 1; i < len(l.History); i++ {
		if step := l.History[i].At.Sub(l.History[i-1].At); step != LagHistoryStep {
			t.Fatalf("points %d and %d are %s apart", i-1, i, step)
		}
	}

	restarted := NewLagSeries(store, slog.Default())
	if err := restarted.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if again, ok := restarted.Get("m1"); !ok || again.Max != 42 || len(again.History) != LagHistoryLength {
		t.Fatalf("after a restart: %+v", again)
	}

	older := t0.Add(time.Hour * 24)
	v := &MigrationView{ID: "m1", LagSeconds: ptr(7.0), LagSampledAt: &older, MaxLagSeconds: 50}
	restarted.Overlay(v)
	if *v.LagSeconds != 7 || v.MaxLagSeconds != 50 || len(v.LagHistory) != LagHistoryLength {
		t.Fatalf("a newer recorded sample was overlaid: lag %v, max %v", *v.LagSeconds, v.MaxLagSeconds)
	}
	v = &MigrationView{ID: "m1", LagSeconds: ptr(3.0), LagSampledAt: &t0}
	restarted.Overlay(v)
	if *v.LagSeconds != 1 || v.MaxLagSeconds != 42 {
		t.Fatalf("the live series was not shown: lag %v, max %v", *v.LagSeconds, v.MaxLagSeconds)
	}
	none := &MigrationView{ID: "m2"}
	restarted.Overlay(none)
	if none.LagSeconds != nil {
		t.Fatal("a migration without a series got a lag")
	}
}
