package servicetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
)

// BuildZdmd compiles cmd/zdmd of the module at root into a temporary
// directory, with the race detector.
func BuildZdmd(t testing.TB, root string) string {
	t.Helper()
	bin, err := BuildZdmdInto(t.TempDir(), root)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// BuildZdmdInto compiles cmd/zdmd into dir (for a TestMain that shares it).
func BuildZdmdInto(dir, root string) (string, error) {
	bin := filepath.Join(dir, "zdmd")
	cmd := exec.Command("go", "build", "-race", "-o", bin, "./cmd/zdmd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// FreeAddr returns a loopback address nothing listens on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Proc is a `zdmd serve` process.
type Proc struct {
	Cmd   *exec.Cmd
	URL   string
	Token string
	log   *syncBuffer
	// keep, when set and true, keeps the log of a test that passes too
	// (see Fleet.KeepLogs).
	keep *atomic.Bool
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Log is what the process printed.
func (p *Proc) Log() string { return p.log.String() }

// StartServe runs `bin serve ARGS` with ZDM_ADMIN_TOKEN=token, in dir, and
// waits until it is ready; it is killed when the test ends. When the test
// fails, its log (a killed process's too) is kept in testout/<test>/ at
// the module's root, named by listen address and process ID, for the
// post-mortem: a test's failure message holds only the end of one log.
func StartServe(t testing.TB, bin, dir, listen, token string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--listen", listen, "--nats-listen", "none"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ZDM_ADMIN_TOKEN="+token)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{Cmd: cmd, URL: "http://" + listen, Token: token, log: log}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if t.Failed() || p.keep != nil && p.keep.Load() {
			keepLog(t, fmt.Sprintf("zdmd-%s-%d.log", strings.ReplaceAll(listen, ":", "_"), cmd.Process.Pid), log.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.URL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("zdmd did not get ready:\n%s", log.String())
	return nil
}

// keepLog writes a log into testout/<test>/.
func keepLog(t testing.TB, name, text string) {
	dir := filepath.Join(milvustest.RepoRoot(), "testout", strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("log not kept: %v", err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Logf("log not kept: %v", err)
		return
	}
	t.Logf("zdmd's log is in %s", filepath.Join(dir, name))
}

// Kill sends SIGKILL and waits for the process.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.Cmd.Wait()
}

// Stop sends SIGTERM and waits for a clean exit.
func (p *Proc) Stop(t testing.TB) {
	t.Helper()
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	if err := p.Cmd.Wait(); err != nil {
		t.Fatalf("zdmd did not stop cleanly: %v\n%s", err, p.Log())
	}
}

// Call sends a JSON request with the process's token and decodes the
// answer into out (if not nil); it returns the status.
func (p *Proc) Call(t testing.TB, method, path string, body, out any) int {
	t.Helper()
	status, data, err := p.do(method, path, body, callTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return status
}

// Send is Call for another goroutine than the test's: errors are
// returned, not fatal.
func (p *Proc) Send(method, path string, body any) (int, []byte, error) {
	return p.do(method, path, body, callTimeout)
}

// Get reads path with the process's token, for a cleanup that must not
// stop at a zdmd that does not answer: errors are returned, not fatal.
func (p *Proc) Get(path string) ([]byte, error) {
	status, data, err := p.do("GET", path, nil, 10*time.Second)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("GET %s: %d: %s", path, status, data)
	}
	return data, err
}

// do sends a request with the process's token (body, if not nil, as
// JSON). A zdmd that stopped answering fails it after timeout rather than
// hanging the test.
func (p *Proc) do(method, path string, body any, timeout time.Duration) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, p.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.Token)
	client := http.Client{Timeout: timeout}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// callTimeout bounds one call to a zdmd under test.
const callTimeout = time.Minute

// Migration is the part of a migration's status tests look at.
type Migration struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Seq      uint64 `json:"seq"`
	Progress struct {
		RowsCopied int64 `json:"rows_copied"`
		RowsTotal  int64 `json:"rows_total"`
	} `json:"progress"`
	LagSeconds    *float64 `json:"lag_seconds"`
	FailureReason string   `json:"failure_reason"`
	FailureDetail string   `json:"failure_detail"`
	Verification  []struct {
		Phase string `json:"phase"`
		Equal bool   `json:"equal"`
	} `json:"verification"`
}

// WaitFor polls a migration until ok says so; a migration that ends in
// another state than want fails the test at once.
func (p *Proc) WaitFor(t testing.TB, id string, timeout time.Duration, ok func(Migration) bool) Migration {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var m Migration
	for time.Now().Before(deadline) {
		p.Call(t, "GET", "/v1/migrations/"+id, nil, &m)
		if ok(m) {
			return m
		}
		if m.State == "failed" || m.State == "cancelled" {
			t.Fatalf("migration ended %s: %s %s\n%s", m.State, m.FailureReason, m.FailureDetail, tail(p.Log(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out; migration: %+v\n%s", m, tail(p.Log(), 3000))
	return m
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Fprintf helps tests write config files.
func WriteFile(t testing.TB, path, format string, args ...any) {
	t.Helper()
	if err := os.WriteFile(path, []byte(fmt.Sprintf(format, args...)), 0o600); err != nil {
		t.Fatal(err)
	}
}
