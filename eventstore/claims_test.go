package eventstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/zdm-io/zdm/eventstore/estest"
)

// One holder at a time works on a piece; a later holder knows someone
// began it; a holder that dies loses its claims a lease TTL later.
func TestAClaimHasOneHolderAndOutlivesNoDeadOne(t *testing.T) {
	ctx := context.Background()
	srv := estest.Start(t)
	const ttl = 600 * time.Millisecond
	a, dieA := srv.Claims(t, "zdmd-a", ttl)
	b, _ := srv.Claims(t, "zdmd-b", ttl)

	held, release, first, ok, err := a.Claim(ctx, "mig-1/db.c/range 0")
	if err != nil || !ok || !first {
		t.Fatalf("first claim: ok=%v first=%v err=%v", ok, first, err)
	}
	if _, _, _, ok, err := b.Claim(ctx, "mig-1/db.c/range 0"); err != nil || ok {
		t.Fatalf("a held claim was taken again: ok=%v err=%v", ok, err)
	}
	if _, rel, first, ok, err := b.Claim(ctx, "mig-1/db.c/range 1"); err != nil || !ok || !first {
		t.Fatalf("another piece: ok=%v first=%v err=%v", ok, first, err)
	} else {
		rel()
	}
	time.Sleep(2 * ttl) // kept alive while its holder works
	if held.Err() != nil {
		t.Fatalf("a kept claim ended: %v", context.Cause(held))
	}
	release()
	if held.Err() == nil {
		t.Fatal("a released claim is still held")
	}
	_, _, first, ok, err = b.Claim(ctx, "mig-1/db.c/range 0")
	if err != nil || !ok || first {
		t.Fatalf("a released claim: ok=%v first=%v err=%v, want taken, not first", ok, first, err)
	}

	held, _, _, ok, err = a.Claim(ctx, "mig-1/db.c/range 2")
	if err != nil || !ok {
		t.Fatalf("claim before dying: ok=%v err=%v", ok, err)
	}
	dieA()
	began := time.Now()
	for {
		if _, _, first, ok, err := b.Claim(ctx, "mig-1/db.c/range 2"); err != nil {
			t.Fatal(err)
		} else if ok {
			if first {
				t.Fatal("the dead holder's piece is taken as never begun")
			}
			break
		}
		if time.Since(began) > 5*ttl {
			t.Fatalf("a dead holder's claim was not free after %s", time.Since(began))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("a dead holder's claim was taken over after %s", time.Since(began).Round(time.Millisecond))
	<-held.Done() // the dead holder's own view ends too
}
