package livesync

import (
	"context"
	"slices"
	"testing"

	"github.com/zdm-io/zdm/dataplane/capture"
)

// While a switch watches, the applier records the keys each applied entry
// wrote, by collection, and tells those written after a sequence; an
// entry whose keys it cannot tell makes its collection's keys unknown.
func TestTheSwitchLearnsTheKeysWrittenAfterAJournalSequence(t *testing.T) {
	a := NewApplier("m-1", nil, nil, nil, nil, false, func(string, string) bool { return true }, nil, nil)
	ctx := context.Background()
	rows := func(keys ...string) *rowSet { return &rowSet{db: "d", coll: "c", keys: keys} }
	upsert := capture.Entry{Op: capture.OpUpsert, Database: "d", Collection: "c"}

	a.watchWrite(ctx, nil, 1, upsert, rows("1"))
	if keys, ok := a.WrittenAfter(0)("d", "c"); ok || keys != nil {
		t.Fatalf("before a watch: %v %v, want nothing known", keys, ok)
	}
	stop := a.WatchKeys()
	a.watchWrite(ctx, nil, 5, upsert, rows("5", "6"))
	a.watchWrite(ctx, nil, 7, capture.Entry{Op: capture.OpHeartbeat, Database: "d", Collection: "c"}, nil)
	a.watchWrite(ctx, nil, 8, upsert, rows("8"))
	written := a.WrittenAfter(5)
	if keys, ok := written("d", "c"); !ok || !slices.Equal(keys, []string{"8"}) {
		t.Fatalf("after 5: %v %v, want [8]", keys, ok)
	}
	if keys, ok := written("d", "other"); !ok || keys != nil {
		t.Fatalf("a collection nothing wrote: %v %v, want none, known", keys, ok)
	}
	a.watchWrite(ctx, nil, 9, capture.Entry{Op: capture.OpDDL, Database: "d", Collection: "c"}, nil)
	if _, ok := a.WrittenAfter(5)("d", "c"); ok {
		t.Fatal("after a DDL the keys written are known")
	}
	many := make([]string, watchedKeysMax+1)
	for i := range many {
		many[i] = "k"
	}
	a.watchWrite(ctx, nil, 10, capture.Entry{Op: capture.OpInsert, Database: "d", Collection: "big"}, &rowSet{keys: many})
	if _, ok := a.WrittenAfter(0)("d", "big"); ok {
		t.Fatalf("more than %d keys are known", watchedKeysMax)
	}
	stop()
	if _, ok := a.WrittenAfter(0)("d", "c"); ok {
		t.Fatal("after the watch stopped the keys are known")
	}
}
