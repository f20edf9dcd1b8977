// Package milvustest finds the test bed's two Milvus servers (started by
// `make milvus-up`) for integration tests. Without them a test is skipped,
// unless ZDM_REQUIRE_INTEGRATION is set (as .ci/run does): then it fails.
package milvustest

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm/adapters/milvus"
)

// Bed is the test bed.
type Bed struct {
	Source, Target string
	// Python is the venv's interpreter, with pymilvus.
	Python string
	// Root is the repository root.
	Root string
}

// Require returns the test bed or ends the test.
func Require(t testing.TB) Bed {
	t.Helper()
	root := repoRoot()
	env := readEnv(filepath.Join(root, ".cache", "milvus", "endpoints.env"))
	get := func(k string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return env[k]
	}
	b := Bed{Source: get("ZDM_MILVUS_SOURCE"), Target: get("ZDM_MILVUS_TARGET"), Python: get("ZDM_MILVUS_PYTHON"), Root: root}
	missing := ""
	if b.Source == "" || b.Target == "" {
		missing = "the Milvus test bed is not running (make milvus-up)"
	} else {
		for _, addr := range []string{b.Source, b.Target} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c, err := milvus.Dial(ctx, milvus.Endpoint{Address: addr})
			cancel()
			if err != nil {
				missing = err.Error()
				break
			}
			c.Close()
		}
	}
	if missing != "" {
		if os.Getenv("ZDM_REQUIRE_INTEGRATION") != "" {
			t.Fatalf("integration test needs Milvus: %s", missing)
		}
		t.Skipf("integration test skipped: %s", missing)
	}
	return b
}

// Empty returns the test bed with both servers emptied (Require, then
// Reset of each).
func Empty(t testing.TB) Bed {
	t.Helper()
	b := Require(t)
	Reset(t, b.Source)
	Reset(t, b.Target)
	return b
}

// Dial connects to addr for the test.
func Dial(t testing.TB, addr string) *milvus.Conn {
	t.Helper()
	c, err := milvus.Dial(context.Background(), milvus.Endpoint{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Reset drops every collection and every database but "default" on addr,
// so a test starts from an empty cluster.
func Reset(t testing.TB, addr string) {
	t.Helper()
	if err := Dial(t, addr).DropEverything(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// RunPython runs a script with the venv's python and returns its output.
func (b Bed) RunPython(t testing.TB, script string, args ...string) string {
	t.Helper()
	if b.Python == "" {
		t.Fatal("no python of the test bed (ZDM_MILVUS_PYTHON)")
	}
	cmd := exec.Command(b.Python, append([]string{script}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", script, args, err, out)
	}
	return string(out)
}

func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

func readEnv(path string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}
