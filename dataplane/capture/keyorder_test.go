package capture

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// acquireAsync acquires c in the background.
func acquireAsync(t *testing.T, o *keyOrder, c *keyClaim) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- o.acquire(context.Background(), c) }()
	return done
}

// waitGranted checks that an acquire returns, within seconds (a busy
// machine may be slow to run it).
func waitGranted(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a claim overlapping nothing held waited")
	}
}

// waitQueued checks that an acquire of c waits: it returns once c is
// queued behind the claims before it, and fails if c was granted. Only a
// release grants a queued claim, so a queued one stays ungranted until
// the test releases what it waits for.
func waitQueued(t *testing.T, o *keyOrder, c *keyClaim, done <-chan error) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		o.mu.Lock()
		queued := false
		if s := o.subjects[c.subject]; s != nil {
			queued = slices.Contains(s.waiting, c)
		}
		o.mu.Unlock()
		select {
		case err := <-done:
			t.Fatalf("a claim overlapping one held was granted (%v)", err)
		default:
		}
		if queued {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a claim was neither granted nor queued")
		}
		time.Sleep(time.Millisecond)
	}
}

// grantedInTurn checks that next, which overlaps held, and later, which
// overlaps next but need not overlap held, are granted one after the
// other as the claims ahead of them are released, and releases them.
func grantedInTurn(t *testing.T, o *keyOrder, held, next, later *keyClaim) {
	t.Helper()
	nextDone := acquireAsync(t, o, next)
	waitQueued(t, o, next, nextDone)
	laterDone := acquireAsync(t, o, later)
	waitQueued(t, o, later, laterDone)
	o.release(held)
	waitGranted(t, nextDone)
	waitQueued(t, o, later, laterDone)
	o.release(next)
	waitGranted(t, laterDone)
	o.release(later)
}

func TestClaimsOfDifferentKeysGoTogetherAndOverlappingOnesInTurn(t *testing.T) {
	o := newKeyOrder()
	a := &keyClaim{subject: "s", ints: []int64{1, 2}}
	waitGranted(t, acquireAsync(t, o, a))
	waitGranted(t, acquireAsync(t, o, &keyClaim{subject: "s", ints: []int64{3}}))
	waitGranted(t, acquireAsync(t, o, &keyClaim{subject: "other", ints: []int64{1}}))
	waitGranted(t, acquireAsync(t, o, &keyClaim{subject: "s"})) // keys the source assigns

	// A later claim of a key b waits for is not let ahead of b.
	b := &keyClaim{subject: "s", ints: []int64{2, 9}}
	grantedInTurn(t, o, a, b, &keyClaim{subject: "s", ints: []int64{9}})
	if o.waits.Load() != 2 || o.waited.Load() <= 0 {
		t.Fatalf("%d claims counted as waiting (%d ns), want the 2 that waited", o.waits.Load(), o.waited.Load())
	}
}

func TestAWholeCollectionClaimWaitsForEveryClaimAndHoldsLaterOnes(t *testing.T) {
	o := newKeyOrder()
	a := &keyClaim{subject: "s", strs: []string{"x"}}
	waitGranted(t, acquireAsync(t, o, a))
	grantedInTurn(t, o, a, &keyClaim{subject: "s", whole: true}, &keyClaim{subject: "s", strs: []string{"y"}})
	if len(o.subjects) != 0 {
		t.Fatalf("claims left after every release: %v", o.subjects)
	}
}

func TestAClaimGivenUpWhileWaitingBlocksNothing(t *testing.T) {
	o := newKeyOrder()
	a := &keyClaim{subject: "s", ints: []int64{1}}
	waitGranted(t, acquireAsync(t, o, a))
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	whole := &keyClaim{subject: "s", whole: true}
	go func() { gaveUp <- o.acquire(ctx, whole) }()
	waitQueued(t, o, whole, gaveUp)
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire after its caller gave up: %v", err)
	}
	waitGranted(t, acquireAsync(t, o, &keyClaim{subject: "s", ints: []int64{2}}))
	one := &keyClaim{subject: "s", ints: []int64{1}}
	again := acquireAsync(t, o, one)
	waitQueued(t, o, one, again)
	o.release(a)
	waitGranted(t, again)
}

func TestDeletesByKeyClaimTheirKeysAndOthersTheCollection(t *testing.T) {
	for expr, want := range map[string]*milvus.Keys{
		"id in [1, 2,3]":               {Ints: []int64{1, 2, 3}},
		"id in[-4]":                    {Ints: []int64{-4}},
		`id in ["a", 'b c']`:           {Strs: []string{"a", "b c"}},
		"id == 7":                      {Ints: []int64{7}},
		"id in []":                     {},
		"id in [1, 'a']":               nil, // mixed types: not a key list
		"id > 5":                       nil,
		"n in [1]":                     nil, // not the key field
		"id in [1] or n == 2":          nil,
		`id in ["a\"", "b"]`:           nil,
		"id in [1, 2] and id in [3]":   nil,
		"  id in [ 10 , 11 ]  ":        {Ints: []int64{10, 11}},
		"id in [9223372036854775808]":  nil, // beyond int64
		"id in (1, 2)":                 nil,
		"id in [\"unterminated, 'x'] ": nil,
	} {
		got, ok := milvus.DeleteKeys(expr, "id")
		if ok != (want != nil) {
			t.Errorf("%q: by key %v, want %v", expr, ok, want != nil)
			continue
		}
		if want != nil && (fmt.Sprint(got.Ints) != fmt.Sprint(want.Ints) || fmt.Sprint(got.Strs) != fmt.Sprint(want.Strs)) {
			t.Errorf("%q: keys %+v, want %+v", expr, got, *want)
		}
	}
}

// Every way a write ends gives its keys back: answered, refused by the
// source, broken off, never sent.
func TestAWriteGivesItsKeysBackHoweverItEnds(t *testing.T) {
	c, _ := armedCapture(t)
	ctx := context.Background()
	refused, _ := proto.Marshal(&milvuspb.MutationResult{Status: &commonpb.Status{ErrorCode: commonpb.ErrorCode_UnexpectedError, Reason: "no"}})
	ends := map[string]func(k *call){
		"answered": func(k *call) { c.after(ctx, k, upsertOf(t, 1), answered()) },
		"refused":  func(k *call) { c.after(ctx, k, upsertOf(t, 1), refused) },
		"broken":   func(k *call) { c.broken(ctx, k) },
		"unsent":   func(k *call) { c.unsent(ctx, k) },
	}
	for name, end := range ends {
		k := begin(t, c, 1)
		end(k)
		req := upsertOf(t, 1)
		again := make(chan *call, 1)
		go func() {
			k, err := c.before(ctx, "src", upsertMethod, req, "", keyField)
			if err != nil {
				t.Error(err)
			}
			again <- k
		}()
		select {
		case k := <-again:
			if k == nil {
				t.FailNow()
			}
			c.after(ctx, k, req, answered())
		case <-time.After(10 * time.Second):
			t.Fatalf("a write of key 1 still waits after the last one was %s", name)
		}
	}
}
