package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// LagHistoryStep is the spacing of the points kept in a lag history:
// LagHistoryLength of them cover half an hour.
const LagHistoryStep = 5 * time.Second

// Lag is a migration's live lag: the latest sample, the highest seen, and
// a history of one point per LagHistoryStep.
type Lag struct {
	Seconds float64    `json:"seconds"`
	At      time.Time  `json:"at"`
	Max     float64    `json:"max"`
	History []LagPoint `json:"history"`
}

// LagStore persists encoded series by migration ID.
type LagStore interface {
	Put(ctx context.Context, key string, value []byte) error
	All(ctx context.Context) (map[string][]byte, error)
}

// LagSeries keeps each migration's per-second lag out of the event log,
// whose history keeps a sample a minute and the threshold crossings. The
// status shows the series where it is newer than the history.
type LagSeries struct {
	store  LagStore
	logger *slog.Logger

	mu   sync.Mutex
	lags map[string]Lag
	// putMu orders the stores of samples: two observed at once were
	// stored in either order, and the store (read after a restart, and
	// by the other instances) could keep the older.
	putMu  sync.Mutex
	stored map[string]time.Time
}

// NewLagSeries returns a series on store; Load reads what it holds.
func NewLagSeries(store LagStore, logger *slog.Logger) *LagSeries {
	return &LagSeries{store: store, logger: logger, lags: map[string]Lag{}, stored: map[string]time.Time{}}
}

// Load reads the stored series (after a restart).
func (s *LagSeries) Load(ctx context.Context) error {
	all, err := s.store.All(ctx)
	if err != nil {
		return fmt.Errorf("load lag series: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, data := range all {
		var l Lag
		if err := json.Unmarshal(data, &l); err != nil {
			return fmt.Errorf("stored lag series %s: %w", id, err)
		}
		s.lags[id] = l
	}
	return nil
}

// ObserveLag adds a sample. A store that refuses it is logged, not
// returned: the series informs, the history decides. A sample observed
// once ctx ended (its migration's sync stopped, cancelled) is dropped:
// it could not be stored, and the status would show a lag that no
// restart, and no other instance, ever sees.
func (s *LagSeries) ObserveLag(ctx context.Context, id string, at time.Time, seconds float64) {
	if ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	l := s.lags[id]
	l.Seconds, l.At, l.Max = seconds, at, max(l.Max, seconds)
	if n := len(l.History); n == 0 || at.Sub(l.History[n-1].At) >= LagHistoryStep {
		l.History = append(l.History, LagPoint{At: at, LagSeconds: seconds})
		if n+1 > LagHistoryLength {
			l.History = append([]LagPoint(nil), l.History[n+1-LagHistoryLength:]...)
		}
	}
	s.lags[id] = l
	data, err := json.Marshal(l)
	s.mu.Unlock()
	s.putMu.Lock()
	defer s.putMu.Unlock()
	if !at.After(s.stored[id]) {
		return // a newer sample is stored already
	}
	if err == nil {
		err = s.store.Put(ctx, id, data)
	}
	if err == nil {
		s.stored[id] = at
	}
	if err != nil && ctx.Err() == nil {
		s.logger.Warn("lag series not stored", "migration", id, "err", err)
	}
}

// LagWatcher tells of every series written, by any instance.
type LagWatcher interface {
	Watch(ctx context.Context, fn func(key string, value []byte)) error
}

// Follow keeps the series up to date with those another instance samples
// (only the instance driving a migration samples its lag), until ctx ends.
func (s *LagSeries) Follow(ctx context.Context) {
	w, ok := s.store.(LagWatcher)
	if !ok {
		return
	}
	for ctx.Err() == nil {
		err := w.Watch(ctx, func(id string, data []byte) {
			var l Lag
			if json.Unmarshal(data, &l) != nil {
				return
			}
			s.mu.Lock()
			if l.At.After(s.lags[id].At) {
				s.lags[id] = l
			}
			s.mu.Unlock()
		})
		if err != nil && ctx.Err() == nil {
			s.logger.Warn("lag series not followed; trying again", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// Get returns a copy of a migration's series.
func (s *LagSeries) Get(id string) (Lag, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.lags[id]
	l.History = append([]LagPoint(nil), l.History...)
	return l, ok
}

// Overlay shows the live series in a status where it is newer than what
// the history recorded.
func (s *LagSeries) Overlay(v *MigrationView) {
	l, ok := s.Get(v.ID)
	if !ok {
		return
	}
	v.MaxLagSeconds = max(v.MaxLagSeconds, l.Max)
	if v.LagSampledAt == nil || l.At.After(*v.LagSampledAt) {
		v.LagSeconds, v.LagSampledAt = ptr(l.Seconds), ptr(l.At)
	}
	if len(l.History) > 0 {
		v.LagHistory = l.History
	}
}
