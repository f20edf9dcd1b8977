package capture

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zdm-io/zdm/domain"
)

// A write that reaches the driving instance as its term ends is not sent
// by it (see term_test.go). Nothing reached the source, so instead of
// failing it waits for the next term: that of another instance, to which
// it is relayed, or a new one of the same instance (whose lease lapsed
// while a NATS node's election ran, and which took it again).
func TestAWriteCaughtByTheEndOfATermGoesToTheNextThatDrives(t *testing.T) {
	for _, next := range []string{"another instance", "the same instance"} {
		t.Run(next, func(t *testing.T) {
			upstream := fakeMilvus(t)
			journal, intents := intentStore(t)
			ending := NewCapture(journal, nil, nil)
			ending.KeepGivenKeys(intents)
			// Its lease lapsed by the clock, its end not yet run.
			ending.ServeTerm(context.Background(), func() time.Time { return time.Now().Add(-time.Millisecond) })
			ending.Arm("src", "m-1", domain.Options{})
			var driving atomic.Value
			driving.Store("")
			e := NewEndpoint("src", func() string { return driving.Load().(string) }, nil)
			addr := serveEndpoint(t, e)
			e.Drive(NewProxy("src", func() string { return upstream }, ending, nil))

			answered := make(chan error, 1)
			go func() { answered <- callUpsert(t, context.Background(), addr, 7) }()
			select {
			case err := <-answered:
				t.Fatalf("answered before a term began: %v", err)
			case <-time.After(500 * time.Millisecond):
			}
			nextCapture, _ := armedCapture(t)
			nextProxy := NewProxy("src", func() string { return upstream }, nextCapture, nil)
			e.Release(time.Second)
			if next == "another instance" {
				other := NewEndpoint("src", func() string { return "" }, nil)
				driving.Store(serveEndpoint(t, other))
				other.Drive(nextProxy)
			} else {
				e.Drive(nextProxy)
			}
			select {
			case err := <-answered:
				if err != nil {
					t.Fatalf("the write: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the write was not sent once the next term began")
			}
			if entries := journaled(t, journal); len(entries) != 0 {
				t.Fatalf("the ended term journaled %+v", entries)
			}
			if entries := journaledIn(t, nextCapture); len(entries) != 1 || entries[0].Op != OpUpsert || entries[0].Pending {
				t.Fatalf("the next term journaled %+v, want the upsert, acknowledged", entries)
			}
		})
	}
}
