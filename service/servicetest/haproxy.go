package servicetest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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
	dir := t.TempDir()
	p, err := haproxy.Start(context.Background(), bin, dir, frontend, backends)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		// Each time HAProxy marked a server down or up, in order, with the
		// sessions it had: a live instance marked down has its clients'
		// connections cut, which shows in their failed calls.
		data, _ := os.ReadFile(filepath.Join(dir, "haproxy.log"))
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, " is DOWN") || strings.Contains(line, " is UP") {
				t.Logf("haproxy: %s", strings.TrimSpace(line))
			}
		}
	})
}
