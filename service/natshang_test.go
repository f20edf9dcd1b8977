package service

import (
	"testing"
	"time"

	"github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/nettest"
)

// A zdmd connected to a NATS node that hangs leaves it for another within
// seconds, where its connection waited minutes and every journal entry
// and command failed meanwhile.
func TestAConnectionLeavesANATSNodeThatHangs(t *testing.T) {
	srv, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	// Two ways to the same server, as two nodes of a cluster would be.
	addr := srv.ClientURL()[len("nats://"):]
	a, b := nettest.NewRelay(t, addr), nettest.NewRelay(t, addr)
	url := func(r *nettest.Relay) string { return "nats://" + r.Addr() }
	nc, err := connectNATS(nil, Config{NATSURL: url(a) + "," + url(b)}, "hang-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	hung, other := a, b
	if nc.ConnectedUrl() == url(b) {
		hung, other = b, a
	}
	hung.Hang()
	began := time.Now()
	for nc.ConnectedUrl() != url(other) || !nc.IsConnected() {
		if time.Since(began) > 30*time.Second {
			t.Fatalf("still on the hung node after %s (%s)", time.Since(began).Round(time.Second), nc.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("the other node does not answer: %v", err)
	}
	t.Logf("left the hung node after %s", time.Since(began).Round(100*time.Millisecond))
}
