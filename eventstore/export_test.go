package eventstore

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
