package haproxy_test

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm/adapters/haproxy"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
)

// The operator guide shows the configuration the tests run.
func TestTheOperatorGuideShowsTheConfigurationTheTestsRun(t *testing.T) {
	guide, err := os.ReadFile("../../docs/operator-guide.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "# /etc/haproxy/haproxy.cfg (HAProxy 2.6, Debian's package)\n"
	_, block, ok := strings.Cut(string(guide), marker)
	if !ok {
		t.Fatal("the operator guide shows no haproxy.cfg")
	}
	block, _, _ = strings.Cut(block, "```")
	want := haproxy.Config(":19530", []string{"zdmd-1:19540", "zdmd-2:19540", "zdmd-3:19540"})
	if block != want {
		t.Fatalf("the guide shows\n%s\nthe tests run\n%s", block, want)
	}
}

// A server HAProxy finds gone is among its state changes.
func TestAServerMarkedDownIsAStateChange(t *testing.T) {
	bin := haproxy.Path()
	if bin == "" {
		milvustest.Missing(t, "haproxy is missing: scripts/haproxy.sh installs it")
	}
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	frontend := front.Addr().String()
	front.Close()
	p, err := haproxy.Start(context.Background(), bin, t.TempDir(), frontend, []string{backend.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	backend.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if changes := p.StateChanges(); len(changes) > 0 {
			if !strings.Contains(changes[0], "zdm/zdmd-1 is DOWN") {
				t.Fatalf("the first state change: %q", changes[0])
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no state change within 10 s of the server's loss")
		}
	}
}
