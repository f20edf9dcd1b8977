package eventstore_test

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
)

const testTTL = 900 * time.Millisecond

func lease(t *testing.T, st *eventstore.Store, holder string) *eventstore.Lease {
	t.Helper()
	l, err := st.Lease(context.Background(), "saga", holder, testTTL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func acquire(t *testing.T, l *eventstore.Lease, within time.Duration) (eventstore.Term, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	start := time.Now()
	term, err := l.Acquire(ctx)
	if err != nil {
		t.Fatalf("acquire within %s: %v", within, err)
	}
	return term, time.Since(start)
}

func TestALeaseHasOneHolderAndPassesOnWhenReleased(t *testing.T) {
	srv := estest.Start(t)
	a, b := lease(t, srv.Store(t), "a"), lease(t, srv.Store(t), "b")
	termA, _ := acquire(t, a, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	kept := make(chan error, 1)
	go func() { kept <- a.Keep(ctx, termA) }()

	// While a renews, b waits far longer than a TTL in vain.
	short, stop := context.WithTimeout(context.Background(), 3*testTTL)
	defer stop()
	if _, err := b.Acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("b acquired a held lease: %v", err)
	}
	if v, err := b.Holder(context.Background()); err != nil || v.Holder != "a" {
		t.Fatalf("holder = %+v, %v; want a", v, err)
	}
	cancel() // a releases
	if err := <-kept; err != nil {
		t.Fatalf("keep after release: %v", err)
	}
	termB, took := acquire(t, b, time.Second)
	if took > testTTL/2 {
		t.Fatalf("a released lease took %s to pass on", took)
	}
	if termB.Revision <= termA.Revision {
		t.Fatalf("term %d after term %d: terms must grow", termB.Revision, termA.Revision)
	}
}

// A holder that stops renewing (killed, or paused) loses the lease within
// about a TTL; when it wakes up it learns at once that it lost it.
func TestALeaseExpiresAndAStaleHolderLearnsItLostIt(t *testing.T) {
	srv := estest.Start(t)
	a, b := lease(t, srv.Store(t), "a"), lease(t, srv.Store(t), "b")
	termA, _ := acquire(t, a, time.Second)
	_, took := acquire(t, b, 5*testTTL)
	if took < testTTL/2 {
		t.Fatalf("b took a lease still fresh after %s", took)
	}
	t.Logf("an abandoned lease passed on after %s (ttl %s)", took, testTTL)
	err := a.Keep(context.Background(), termA)
	if !errors.Is(err, eventstore.ErrLeaseLost) {
		t.Fatalf("stale holder's keep = %v, want ErrLeaseLost", err)
	}
	if v, _ := b.Holder(context.Background()); v.Holder != "b" {
		t.Fatalf("holder after the stale renewal = %q, want b", v.Holder)
	}
}

func TestAHolderRestartedUnderItsNameTakesItsLeaseBackAtOnce(t *testing.T) {
	srv := estest.Start(t)
	acquire(t, lease(t, srv.Store(t), "a"), time.Second)
	_, took := acquire(t, lease(t, srv.Store(t), "a"), time.Second)
	if took > testTTL/3 {
		t.Fatalf("a restarted holder waited %s for its own lease", took)
	}
}

// The holder's endpoints are in the lease from its first write, and what
// it serves later is there after its next renewal.
func TestALeaseCarriesWhatItsHolderAdvertises(t *testing.T) {
	srv := estest.Start(t)
	a, b := lease(t, srv.Store(t), "a"), lease(t, srv.Store(t), "b")
	var mu sync.Mutex
	endpoints := map[string]string{"c-1": "zdmd-a:19541"}
	a.Advertise(func() map[string]string {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(endpoints)
	})
	term, _ := acquire(t, a, time.Second)
	if v, err := b.Holder(context.Background()); err != nil || v.Endpoints["c-1"] != "zdmd-a:19541" {
		t.Fatalf("after the take: %+v, %v", v, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = a.Keep(ctx, term) }()
	mu.Lock()
	endpoints["c-2"] = "zdmd-a:19542"
	mu.Unlock()
	deadline := time.Now().Add(testTTL)
	for {
		v, err := b.Holder(context.Background())
		if err == nil && v.Endpoints["c-2"] == "zdmd-a:19542" && v.Holder == "a" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a TTL after a new endpoint the lease holds %+v, %v", v, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// While it keeps the lease, the holder knows until when it surely holds
// it by its clock: two thirds of a TTL past the write that took it, then
// past each renewal, never moving back and never further ahead; once it
// gives the lease back, a time already past.
func TestAHolderKnowsUntilWhenItSurelyHoldsTheLease(t *testing.T) {
	srv := estest.Start(t)
	a := lease(t, srv.Store(t), "a")
	if !a.HeldUntil().IsZero() {
		t.Fatalf("before any term, held until %v", a.HeldUntil())
	}
	term, _ := acquire(t, a, time.Second)
	first := a.HeldUntil()
	if left := time.Until(first); left <= 0 || left > 2*testTTL/3 {
		t.Fatalf("a term just taken is held for %s more, want up to %s", left, 2*testTTL/3)
	}
	ctx, cancel := context.WithCancel(context.Background())
	kept := make(chan error, 1)
	go func() { kept <- a.Keep(ctx, term) }()
	seen := []time.Time{first}
	for end := time.Now().Add(2 * testTTL); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		u := a.HeldUntil()
		if ahead := time.Until(u); ahead > 2*testTTL/3 {
			t.Fatalf("held until %s ahead, more than %s", ahead, 2*testTTL/3)
		}
		if u.Before(seen[len(seen)-1]) {
			t.Fatalf("held until %v after %v", u, seen[len(seen)-1])
		}
		if !u.Equal(seen[len(seen)-1]) {
			seen = append(seen, u)
		}
	}
	if len(seen) < 3 || seen[len(seen)-1].Before(first.Add(testTTL)) {
		t.Fatalf("held until %v over two TTLs of renewals; want at least 3 times, the last about 2 TTL past %v", seen, first)
	}
	cancel()
	if err := <-kept; err != nil {
		t.Fatalf("keep: %v", err)
	}
	if u := a.HeldUntil(); u.After(time.Now()) {
		t.Fatalf("the lease given back is still held until %v", u)
	}
}

// A holder that stops renewing, its value left on the server (killed,
// cut off from NATS), passes the lease on once the waiting holder has
// seen its value unrenewed for a TTL: not when the server forgets the
// value, here an hour later. Never before the stale holder's own grace
// ended, and never while it renews.
func TestALeaseIsTakenOverOnceItsHolderStoppedRenewingNotWhenTheServerForgetsIt(t *testing.T) {
	srv := estest.Start(t)
	ctx := context.Background()
	kept := func(st *eventstore.Store, holder string) *eventstore.Lease {
		l, err := st.LeaseKeptForTest(ctx, "saga", holder, testTTL, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	ncA := srv.Conn(t)
	stA, err := eventstore.Open(ctx, ncA)
	if err != nil {
		t.Fatal(err)
	}
	a, b := kept(stA, "a"), kept(srv.Store(t), "b")
	termA, _ := acquire(t, a, time.Second)
	kctx, stopKeep := context.WithCancel(ctx)
	defer stopKeep()
	kept1 := make(chan error, 1)
	go func() { kept1 <- a.Keep(kctx, termA) }()

	// While a renews, b waits far longer than a TTL in vain.
	short, stop := context.WithTimeout(ctx, 4*testTTL)
	defer stop()
	if _, err := b.Acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("b acquired a lease its holder renews: %v", err)
	}

	// a's process dies: its connection closes, no renewal and no release
	// reach the server, and its value stays there.
	ncA.Close()
	if err := <-kept1; !errors.Is(err, eventstore.ErrLeaseLost) {
		t.Fatalf("a's keep without NATS = %v, want ErrLeaseLost", err)
	}
	aHeld := a.HeldUntil()
	termB, took := acquire(t, b, 10*testTTL)
	if now := time.Now(); now.Before(aHeld) {
		t.Fatalf("b took the lease over %s before a's grace ended", aHeld.Sub(now))
	}
	if termB.Revision <= termA.Revision {
		t.Fatalf("term %d after term %d: terms must grow", termB.Revision, termA.Revision)
	}
	if v, err := b.Holder(ctx); err != nil || v.Holder != "b" {
		t.Fatalf("holder = %+v, %v; want b", v, err)
	}
	t.Logf("a lease whose holder died passed on %s after its holder lost it (ttl %s)", took, testTTL)
}

// Follow tells every write of the lease as it is stored: the holder's
// value and each renewal, the next holder's, and a release as no holder.
func TestFollowingALeaseSeesEachHolderAsItTakesIt(t *testing.T) {
	srv := estest.Start(t)
	a, b := lease(t, srv.Store(t), "a"), lease(t, srv.Store(t), "b")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan string, 64)
	followed := make(chan error, 1)
	go func() { followed <- b.Follow(ctx, func(v eventstore.LeaseValue) { seen <- v.Holder }) }()
	next := func(want string) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case h := <-seen:
				if h == want {
					return
				}
			case <-deadline:
				t.Fatalf("following the lease never saw holder %q", want)
			}
		}
	}
	termA, _ := acquire(t, a, time.Second)
	next("a")
	kctx, release := context.WithCancel(context.Background())
	kept := make(chan error, 1)
	go func() { kept <- a.Keep(kctx, termA) }()
	release()
	if err := <-kept; err != nil {
		t.Fatal(err)
	}
	next("") // released
	acquire(t, b, time.Second)
	next("b")
	cancel()
	if err := <-followed; err != nil {
		t.Fatalf("follow after its context ended: %v", err)
	}
}
