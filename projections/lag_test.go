package projections

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
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

// gatedStore holds the Put of one sample until released, as a store
// answers two writes at once in either order.
type gatedStore struct {
	memStore
	mu      sync.Mutex
	hold    []byte // the data whose Put waits
	release chan struct{}
	held    chan struct{}
}

func (s *gatedStore) Put(ctx context.Context, k string, v []byte) error {
	if s.hold != nil && bytes.Equal(v, s.hold) {
		close(s.held)
		<-s.release
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.memStore.Put(ctx, k, v)
}

// A sample observed once its sync ended changes nothing, and of two
// samples stored at once the store keeps the newer: a restart (and every
// other instance) sees the lag the status showed.
func TestTheLagSeriesStoresItsNewestSampleAndNoneAfterTheSyncEnded(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	older, _ := json.Marshal(Lag{Seconds: 10, At: t0, Max: 10, History: []LagPoint{{At: t0, LagSeconds: 10}}})
	store := &gatedStore{memStore: memStore{m: map[string][]byte{}}, hold: older, release: make(chan struct{}), held: make(chan struct{})}
	s := NewLagSeries(store, slog.Default())
	done := make(chan struct{})
	go func() { defer close(done); s.ObserveLag(context.Background(), "m1", t0, 10) }()
	<-store.held // the older sample's store waits
	newer := make(chan struct{})
	go func() { defer close(newer); s.ObserveLag(context.Background(), "m1", t0.Add(50*time.Millisecond), 5) }()
	select {
	case <-newer:
	case <-time.After(200 * time.Millisecond):
	}
	close(store.release)
	<-done
	<-newer

	ended, cancel := context.WithCancel(context.Background())
	cancel()
	s.ObserveLag(ended, "m1", t0.Add(time.Second), 1)
	if l, _ := s.Get("m1"); l.Seconds != 5 {
		t.Fatalf("the status shows %v, want the newest sample stored, 5", l.Seconds)
	}
	restarted := NewLagSeries(store, slog.Default())
	if err := restarted.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l, _ := restarted.Get("m1"); l.Seconds != 5 || !l.At.Equal(t0.Add(50*time.Millisecond)) {
		t.Fatalf("after a restart the series shows %v at %s, want 5, the newest", l.Seconds, l.At)
	}
}
