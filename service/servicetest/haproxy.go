package servicetest

import (
	"context"
	"testing"

	"github.com/zdm-io/zdm/adapters/haproxy"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
)

// StartHAProxy runs HAProxy, configured as the operator guide shows, until
// the test ends. Without HAProxy (scripts/haproxy.sh installs it) the test
// skips, or fails under ZDM_REQUIRE_INTEGRATION.
func StartHAProxy(t testing.TB, frontend string, backends []string) {
	t.Helper()
	bin := haproxy.Path()
	if bin == "" {
		milvustest.Missing(t, "haproxy is missing: scripts/haproxy.sh installs it")
	}
	p, err := haproxy.Start(context.Background(), bin, t.TempDir(), frontend, backends)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		// Failed client calls are traced to a kill, or to a live instance
		// marked down.
		for _, line := range p.StateChanges() {
			t.Logf("haproxy: %s", line)
		}
	})
}
