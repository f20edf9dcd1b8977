package rowcopy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestInParallelRunsAtMostNAtATime(t *testing.T) {
	items := make([]int, 20)
	var running, most atomic.Int32
	var seen sync.Map
	err := inParallel(context.Background(), items, 4, func(_ context.Context, i int, _ int) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		seen.Store(i, true)
		time.Sleep(5 * time.Millisecond)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if m := most.Load(); m != 4 {
		t.Fatalf("at most %d ran at a time, want 4", m)
	}
	for i := range items {
		if _, ok := seen.Load(i); !ok {
			t.Fatalf("item %d never ran", i)
		}
	}
}

func TestInParallelStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	var started atomic.Int32
	err := inParallel(context.Background(), make([]int, 100), 2, func(ctx context.Context, i int, _ int) error {
		started.Add(1)
		if i == 3 {
			return boom
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if n := started.Load(); n > 10 {
		t.Fatalf("%d items started after the error", n)
	}
}

func TestInParallelSaysSoWhenItsContextEnded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := inParallel(ctx, make([]int, 5), 2, func(context.Context, int, int) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("err = %v, ran = %v: a cancelled context must start nothing and say so", err, ran)
	}
}

func TestEachStopsTheFeedAtTheFirstFailedJob(t *testing.T) {
	c := NewCopier(nil, Config{Readers: 2}, nil)
	boom := errors.New("boom")
	fed := 0
	err := c.each(context.Background(), func(_ context.Context, send func(job) bool) error {
		for range 1000 {
			if !send(job{}) {
				return nil
			}
			fed++
		}
		return nil
	}, func(context.Context, job) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if fed > 3 {
		t.Fatalf("the feed sent %d jobs after the first failed", fed)
	}
}

func TestEachReturnsTheFeedsError(t *testing.T) {
	c := NewCopier(nil, Config{Readers: 2}, nil)
	bad := errors.New("cannot make the collection")
	ran := 0
	var mu sync.Mutex
	err := c.each(context.Background(), func(_ context.Context, send func(job) bool) error {
		send(job{})
		return bad
	}, func(context.Context, job) error { mu.Lock(); ran++; mu.Unlock(); return nil })
	if !errors.Is(err, bad) {
		t.Fatalf("err = %v, want the feed's error", err)
	}
	if ran != 1 {
		t.Fatalf("%d jobs ran, want the one sent", ran)
	}
}
