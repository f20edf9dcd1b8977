package capture

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// Writes to names that exist nowhere (a client's typos, a fuzzer's
// guesses) leave their failed look-ups behind only while they stand: the
// proxy's memory does not grow with every name ever written to, and the
// collections that exist stay known.
func TestFailedLookupsDoNotPileUp(t *testing.T) {
	j, _ := intentStore(t)
	c := NewCapture(j, nil, nil)
	ctx := context.Background()
	exists := func(_ context.Context, _, name string) (string, string, error) { return name, "id", nil }
	missing := func(context.Context, string, string) (string, string, error) {
		return "", "", errors.New("collection not found")
	}
	const real = 50
	for i := range real {
		if k := c.lookup(ctx, collectionRef{"src", "d", fmt.Sprintf("real%d", i)}, exists); k.name == "" {
			t.Fatal("an existing collection not known")
		}
	}
	age := func() { // as if lookupRetry had passed
		c.mu.Lock()
		for ref, k := range c.known {
			k.at = k.at.Add(-lookupRetry)
			c.known[ref] = k
		}
		c.mu.Unlock()
	}
	for round := range 20 {
		for i := range 1000 {
			if k := c.lookup(ctx, collectionRef{"src", "d", fmt.Sprintf("typo%d-%d", round, i)}, missing); k.name != "" {
				t.Fatal("a failed look-up named a collection")
			}
		}
		age()
	}
	c.mu.Lock()
	size := len(c.known)
	_, kept := c.known[collectionRef{"src", "d", "real7"}]
	c.mu.Unlock()
	if size > 3*minSweep {
		t.Fatalf("%d look-ups kept after 20,000 failed ones", size)
	}
	if !kept {
		t.Fatal("a sweep dropped an existing collection")
	}
	// A failed look-up still stands until it is stale.
	calls := 0
	counting := func(context.Context, string, string) (string, string, error) {
		calls++
		return "", "", errors.New("collection not found")
	}
	for range 3 {
		c.lookup(ctx, collectionRef{"src", "d", "soon"}, counting)
	}
	if calls != 1 {
		t.Fatalf("a failed look-up made %d times within %s", calls, lookupRetry)
	}
}
