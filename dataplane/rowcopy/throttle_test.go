package rowcopy

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAThrottleWithoutALimitLetsEverythingThrough(t *testing.T) {
	th := newThrottle(0)
	if err := th.wait(context.Background(), 1<<30); err != nil {
		t.Fatal(err)
	}
	if th.pageRows(8000, 8) != 8000 || th.limit() != 0 {
		t.Fatalf("page %d, limit %d", th.pageRows(8000, 8), th.limit())
	}
}

func TestALimitedCopysReadersReadASecondsWorthAtMostInAll(t *testing.T) {
	th := newThrottle(4000)
	if th.limit() != 4000 || th.pageRows(8000, 8) != 500 || th.pageRows(300, 8) != 300 || th.pageRows(8000, 1) != 4000 {
		t.Fatalf("limit %d: pages of %d, %d and %d", th.limit(), th.pageRows(8000, 8), th.pageRows(300, 8), th.pageRows(8000, 1))
	}
	th.set(10) // a page is never cut below minLimitedPage
	if th.pageRows(8000, 8) != minLimitedPage {
		t.Fatalf("limit 10: pages of %d", th.pageRows(8000, 8))
	}
}

// A reader waiting under a low limit goes on once the limit is lifted,
// not when the old limit would have let it; one whose copy ends stops.
func TestAWaitFollowsAChangeOfTheLimit(t *testing.T) {
	th := newThrottle(1) // 100 rows (the burst) take 100 s at 1 row/s
	done := make(chan error, 1)
	go func() { done <- th.wait(context.Background(), 300) }()
	time.Sleep(50 * time.Millisecond)
	th.set(0)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the wait did not follow the lifted limit")
	}
	th.set(1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- th.wait(ctx, 300) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the wait did not end with its context")
	}
}

func TestAThrottleFollowsItsMigrationsLimit(t *testing.T) {
	th := newThrottle(0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	limits := make(chan int64, 1)
	limits <- 2500
	go th.follow(ctx, func(context.Context) (int64, error) {
		select {
		case v := <-limits:
			return v, nil
		default:
			return 0, errors.New("unchanged") // an error keeps the limit as it is
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for th.limit() != 2500 {
		if time.Now().After(deadline) {
			t.Fatal("the change never reached the throttle")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
