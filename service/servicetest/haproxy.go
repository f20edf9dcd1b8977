package servicetest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// HAProxyConfig is the load balancer's configuration the operator guide
// shows, with the frontend's address and one server per zdmd proxy.
func HAProxyConfig(frontend string, backends []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `defaults
  mode tcp
  timeout connect 2s
  timeout client 1h
  timeout server 1h
frontend milvus
  bind %s
  default_backend zdm
backend zdm
  option tcp-check
  default-server inter 500ms fall 1 rise 1 on-marked-down shutdown-sessions
`, frontend)
	for i, addr := range backends {
		fmt.Fprintf(&b, "  server zdmd-%d %s check\n", i+1, addr)
	}
	return b.String()
}

// HAProxyPath finds HAProxy (scripts/haproxy.sh installs it): its path,
// or "" after skipping the test, or failing it under
// ZDM_REQUIRE_INTEGRATION.
func HAProxyPath(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("ZDM_HAPROXY"), "/usr/sbin/haproxy"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	if os.Getenv("ZDM_REQUIRE_INTEGRATION") != "" {
		t.Fatal("haproxy is missing: scripts/haproxy.sh installs it")
	}
	t.Skip("haproxy is missing: scripts/haproxy.sh installs it")
	return ""
}

// StartHAProxy runs HAProxy in the foreground with HAProxyConfig until the
// test ends, once its frontend accepts connections.
func StartHAProxy(t testing.TB, frontend string, backends []string) {
	t.Helper()
	bin := HAProxyPath(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(HAProxyConfig(frontend, backends)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", cfg)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", frontend, time.Second); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not listen on %s:\n%s", frontend, log.String())
		}
	}
}
