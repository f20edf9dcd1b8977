package handlers

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore/estest"
	"github.com/zdm-io/zdm/retry"
)

// electingLog answers as a JetStream cluster electing a leader does: its
// first loads get no answer, and its first append is stored but its
// answer is lost.
type electingLog struct {
	EventLog
	loadFails   atomic.Int64
	appendLost  atomic.Int64
	appendCalls atomic.Int64
}

func (l *electingLog) Load(ctx context.Context, subject string, after uint64) ([]domain.Record, uint64, error) {
	if l.loadFails.Add(-1) >= 0 {
		return nil, 0, fmt.Errorf("last message of %s: %w", subject, domain.ErrStoreUnavailable)
	}
	return l.EventLog.Load(ctx, subject, after)
}

func (l *electingLog) Append(ctx context.Context, subject string, expected uint64, b domain.Batch) (uint64, error) {
	l.appendCalls.Add(1)
	seq, err := l.EventLog.Append(ctx, subject, expected, b)
	if err == nil && l.appendLost.Add(-1) >= 0 {
		return 0, fmt.Errorf("append to %s: %w", subject, domain.ErrStoreUnavailable)
	}
	return seq, err
}

// A command sent while the store elects a leader waits it out and is
// stored once, even when the answer to its first append was lost.
func TestACommandWaitsOutAnElectingStoreAndIsStoredOnce(t *testing.T) {
	ctx := context.Background()
	store := estest.Start(t).Store(t)
	log := &electingLog{EventLog: store}
	log.loadFails.Store(2)
	log.appendLost.Store(1)
	fast := retry.Policy{Attempts: 8, First: time.Millisecond}
	r := newRepository(EventLog(log), nil, SystemClock{}, fast, domain.ClusterStream, func() *domain.Cluster { return &domain.Cluster{} })
	decided := 0
	c, err := r.Exec(ctx, "cl-1", "cmd-register", "olga", func(c *domain.Cluster) ([]domain.Event, error) {
		decided++
		if c.Seq() != 0 {
			return nil, errors.New("decided again on a cluster already registered")
		}
		return []domain.Event{domain.ClusterRegistered{ID: "cl-1", Name: "prod", Organization: "acme", Project: "search", Endpoint: "127.0.0.1:19530"}}, nil
	})
	if err != nil {
		t.Fatalf("exec through an election: %v", err)
	}
	if c.Name != "prod" || decided != 1 || log.appendCalls.Load() != 2 {
		t.Fatalf("cluster %q after %d decisions and %d appends, want prod, 1, 2", c.Name, decided, log.appendCalls.Load())
	}
	subj, _ := domain.ClusterStream("cl-1")
	recs, _, err := store.Load(ctx, subj, 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("the log holds %d events (%v), want the one registration", len(recs), err)
	}

	// A store that stays away is reported as such once the policy is spent.
	log.loadFails.Store(100)
	_, err = r.Exec(ctx, "cl-2", "cmd-2", "olga", func(*domain.Cluster) ([]domain.Event, error) { return nil, nil })
	if !errors.Is(err, domain.ErrStoreUnavailable) || log.loadFails.Load() != 100-8 {
		t.Fatalf("a store away for good: %v after %d loads, want ErrStoreUnavailable after 8", err, 100-log.loadFails.Load())
	}
}
