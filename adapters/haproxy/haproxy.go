// Package haproxy runs HAProxy in front of several zdmd's Milvus proxies,
// configured as the operator guide shows: the HA tests and make demo-ha
// start exactly this configuration.
package haproxy

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Config is HAProxy's configuration: a TCP frontend on frontend, and one
// server per zdmd endpoint; connections are spread over the live ones
// (each relays to the one that drives), a connection refused is tried at
// once on another server, and a server found down has its connections
// closed, so clients reconnect to a live one.
//
// Every 500 ms each server is sent what opens an HTTP/2 connection (the
// client's preface and an empty SETTINGS frame) and must answer with its
// own SETTINGS frame within a second. A server whose process is stopped
// or frozen still accepts connections (the kernel completes them), so a
// check that only connects kept it up and sent it new clients that then
// hung; two checks without an answer mark it down.
func Config(frontend string, backends []string) string {
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
  balance roundrobin
  retries 2
  option redispatch 1
  timeout check 1s
  option tcp-check
  tcp-check send-binary %s
  tcp-check expect binary %s
  default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
`, frontend, http2Greeting, http2Settings)
	for i, addr := range backends {
		fmt.Fprintf(&b, "  server zdmd-%d %s check\n", i+1, addr)
	}
	return b.String()
}

// http2Greeting is an HTTP/2 client's preface ("PRI * HTTP/2.0...")
// followed by an empty SETTINGS frame, in hex.
const http2Greeting = "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a" + "000000040000000000"

// http2Settings is the header of the SETTINGS frame every HTTP/2 server
// sends first, past its length: type 4, no flags, stream 0.
const http2Settings = "040000000000"

// Path finds HAProxy: $ZDM_HAPROXY, /usr/sbin/haproxy or the PATH's
// ("" if none; scripts/haproxy.sh installs it).
func Path() string {
	for _, p := range []string{os.Getenv("ZDM_HAPROXY"), "/usr/sbin/haproxy"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	p, _ := exec.LookPath("haproxy")
	return p
}

// Process is a running HAProxy.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// Start runs bin in the foreground with Config written under dir, its
// output in dir/haproxy.log, and waits until the frontend accepts
// connections.
func Start(ctx context.Context, bin, dir, frontend string, backends []string) (*Process, error) {
	return StartConfig(ctx, bin, dir, frontend, Config(frontend, backends))
}

// StartConfig is Start with a configuration of the caller's, whose
// frontend listens on frontend.
func StartConfig(ctx context.Context, bin, dir, frontend, config string) (*Process, error) {
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "haproxy.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-db", "-f", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start haproxy: %w", err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{}), log: logf.Name()}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", frontend, time.Second); err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("haproxy exited; see %s", filepath.Join(dir, "haproxy.log"))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.Stop()
			return nil, fmt.Errorf("haproxy did not listen on %s; see %s", frontend, filepath.Join(dir, "haproxy.log"))
		}
	}
}

// Stop kills HAProxy and waits for it.
func (p *Process) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// StateChanges are the lines of its log, in order, where HAProxy marked a
// server down or up, each with the sessions the server had: a live
// instance marked down has its clients' connections cut.
func (p *Process) StateChanges() []string {
	data, _ := os.ReadFile(p.log)
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, " is DOWN") || strings.Contains(line, " is UP") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}
