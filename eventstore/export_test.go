package eventstore

import (
	"context"
	"time"
)

// StopDeliveryForTest stops a subscription's delivery behind its back, as
// the stall its watch guards against does.
func (s *Subscription) StopDeliveryForTest() {
	s.mu.Lock()
	cc := s.cc
	s.mu.Unlock()
	cc.Stop()
	<-cc.Closed()
}

// FromLeader exposes fromLeader.
var FromLeader = fromLeader

// PartSize exposes the most of an entry one journal message holds.
func PartSize(j *Journal) int64 { return j.partSize() }

// LeaseKeptForTest is Store.Lease in a bucket that keeps a value for
// keep rather than the lease's ttl: only the holder's lapse passes the
// lease on.
func (s *Store) LeaseKeptForTest(ctx context.Context, key, holder string, ttl, keep time.Duration) (*Lease, error) {
	kv, err := s.leaseBucket(ctx, keep)
	if err != nil {
		return nil, err
	}
	return s.leaseIn(kv, key, holder, ttl, nil), nil
}
