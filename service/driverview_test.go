package service

import (
	"context"
	"testing"
	"time"

	"github.com/zdm-io/zdm/eventstore"
)

// A relayed call sent back by an instance that does not drive has the
// view read the lease again, however fresh it was; and a write the watch
// sends again once it fell behind never replaces a newer one.
func TestTheViewOfWhoDrivesIsReadAgainWhenACallComesBackAndNeverGoesBack(t *testing.T) {
	stored := eventstore.LeaseValue{Holder: "zdmd-2", Revision: 9}
	reads := 0
	dv := &driverView{fresh: time.Hour, read: func(context.Context) (eventstore.LeaseValue, error) {
		reads++
		return stored, nil
	}}
	if !dv.seen(eventstore.LeaseValue{Holder: "zdmd-1", Revision: 7}) {
		t.Fatal("the first holder seen is a change")
	}
	if v := dv.holder(context.Background()); v.Holder != "zdmd-1" || reads != 0 {
		t.Fatalf("a fresh view: %s after %d reads, want zdmd-1 without a read", v.Holder, reads)
	}
	dv.lookAgain()
	if v := dv.holder(context.Background()); v.Holder != "zdmd-2" || reads != 1 {
		t.Fatalf("after a call came back: %s after %d reads, want zdmd-2 read once", v.Holder, reads)
	}
	if v := dv.holder(context.Background()); reads != 1 {
		t.Fatalf("read %d times, want once until the next call comes back (%s)", reads, v.Holder)
	}
	// The watch, behind, sends zdmd-1's last renewals again.
	if dv.seen(eventstore.LeaseValue{Holder: "zdmd-1", Revision: 8}) {
		t.Fatal("an older write was taken as a change of holder")
	}
	if v := dv.holder(context.Background()); v.Holder != "zdmd-2" {
		t.Fatalf("after an older write: %s, want zdmd-2", v.Holder)
	}
	// Newer writes are taken, deletions (no holder) too.
	if !dv.seen(eventstore.LeaseValue{Revision: 10}) || dv.holder(context.Background()).Holder != "" {
		t.Fatal("a deletion of the lease was not taken")
	}
}
