package capture

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zdm-io/zdm/domain"
)

// A write that reaches the capture after its term ended is not sent: the
// zdmd that drives next may have read the intents before this one's.
func TestAWriteAfterTheEndOfItsTermIsNotSent(t *testing.T) {
	journal, intents := intentStore(t)
	c := NewCapture(journal, nil, nil)
	c.KeepGivenKeys(intents)
	term, end := context.WithCancel(context.Background())
	c.ServeTerm(term, nil)
	c.Arm("src", "m-1", domain.Options{})
	end()
	sent := false
	_, err := c.Forward(context.Background(), Call{ClusterID: "src", Method: upsertMethod, Request: upsertOf(t, 7), Lookup: keyField},
		func(context.Context, []byte) (Sent, error) { sent = true; return Sent{}, nil })
	if sent || status.Code(err) != codes.Unavailable {
		t.Fatalf("sent %v, answer %v; want nothing sent and UNAVAILABLE", sent, err)
	}
	if entries := journaled(t, journal); len(entries) != 0 {
		t.Fatalf("journaled %+v", entries)
	}
}

// A process frozen past its lease (stopped, a paused VM) wakes with its
// term not yet ended: what ends it has not run yet, while another zdmd
// drives already. By its own clock the capture knows the lease lapsed,
// and sends no write: one sent now would reach the source after the next
// term's writes of the same keys. Within the lease, writes are sent.
func TestAWriteAfterItsLeaseLapsedByTheClockIsNotSent(t *testing.T) {
	for _, lapsed := range []bool{false, true} {
		journal, intents := intentStore(t)
		c := NewCapture(journal, nil, nil)
		c.KeepGivenKeys(intents)
		until := time.Now().Add(time.Minute)
		if lapsed {
			until = time.Now().Add(-time.Millisecond)
		}
		c.ServeTerm(context.Background(), func() time.Time { return until })
		c.Arm("src", "m-1", domain.Options{})
		sent := false
		_, err := c.Forward(context.Background(), Call{ClusterID: "src", Method: upsertMethod, Request: upsertOf(t, 7), Lookup: keyField},
			func(_ context.Context, req []byte) (Sent, error) {
				sent = true
				return Sent{Request: req, Response: answered()}, nil
			})
		if lapsed && (sent || status.Code(err) != codes.Unavailable) {
			t.Fatalf("lease lapsed: sent %v, answer %v; want nothing sent and UNAVAILABLE", sent, err)
		}
		if !lapsed && (!sent || err != nil) {
			t.Fatalf("lease held: sent %v, answer %v", sent, err)
		}
	}
}
