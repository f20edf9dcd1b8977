package service

import (
	"context"
	"sync"
	"time"

	"github.com/zdm-io/zdm/eventstore"
)

// driverView is what an instance knows of the saga lease's holder, for
// the endpoints' relays: each write the lease watch sees, and a read of
// the lease when that is over fresh old or a relayed call came back from
// an instance that does not drive (the view is behind then).
type driverView struct {
	read  func(context.Context) (eventstore.LeaseValue, error)
	fresh time.Duration

	mu sync.Mutex
	v  eventstore.LeaseValue
	at time.Time // when v was seen or read
	// rev is the latest revision of the lease seen: a watch that fell
	// behind (its consumer recreated after a NATS node was lost) sends
	// older writes again, which must not replace a newer value.
	rev     uint64
	recheck bool
}

// seen takes a write of the lease the watch saw; it says whether the
// holder changed.
func (dv *driverView) seen(v eventstore.LeaseValue) bool {
	dv.mu.Lock()
	defer dv.mu.Unlock()
	if v.Revision != 0 && v.Revision < dv.rev {
		return false
	}
	changed := v.Holder != dv.v.Holder
	dv.take(v)
	return changed
}

// take makes v the view; mu is held.
func (dv *driverView) take(v eventstore.LeaseValue) {
	dv.v, dv.at = v, time.Now()
	dv.rev = max(dv.rev, v.Revision)
}

// lookAgain has the next holder read the lease.
func (dv *driverView) lookAgain() {
	dv.mu.Lock()
	dv.recheck = true
	dv.mu.Unlock()
}

// holder returns the lease's value as last seen, read again first if
// that is over fresh old or lookAgain was called since. A read that fails
// leaves the view as it was.
func (dv *driverView) holder(ctx context.Context) eventstore.LeaseValue {
	dv.mu.Lock()
	defer dv.mu.Unlock()
	if dv.recheck || time.Since(dv.at) > dv.fresh {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		v, err := dv.read(ctx)
		cancel()
		// A value not found (Revision 0) is the lease as it is now.
		if err == nil && (v.Revision == 0 || v.Revision >= dv.rev) {
			dv.take(v)
			dv.recheck = false
		}
	}
	return dv.v
}
