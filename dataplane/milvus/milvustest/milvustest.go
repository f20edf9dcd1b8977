// Package milvustest finds the test bed's two Milvus servers (started by
// `make milvus-up`) for integration tests. Without them a test is skipped,
// unless ZDM_REQUIRE_INTEGRATION is set (as .ci/run does): then it fails.
package milvustest

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
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
	root := RepoRoot()
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
		Missing(t, "integration test needs Milvus: %s", missing)
	}
	return b
}

// Missing ends a test that lacks something from outside Go (a server, a
// browser, a client SDK, a tool): it skips, or fails under
// ZDM_REQUIRE_INTEGRATION, as .ci/run sets, so that no skip hides what CI
// lacks.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("ZDM_REQUIRE_INTEGRATION") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
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

// Kill SIGKILLs one server of the bed ("source" or "target"), as a crash
// would. The returned restart starts it again on its ports and data, and
// returns once it has loaded again every collection that was loaded; it
// also runs when the test ends, so the tests after it find the bed whole.
func (b Bed) Kill(t testing.TB, name string) (restart func()) {
	t.Helper()
	if os.Getenv("ZDM_MILVUS_IMPL") == "lite" {
		t.Fatal("killing a server needs the standalone test bed, not milvus-lite")
	}
	addr := b.Source
	if name == "target" {
		addr = b.Target
	}
	ctx := context.Background()
	loaded, err := loadStates(ctx, addr, commonpb.LoadState_LoadStateLoaded)
	if err != nil {
		t.Fatal(err)
	}
	b.RunPython(t, b.script(), "stop", name, "--root", b.ServersRoot(), "--kill")
	var once sync.Once
	restart = func() {
		once.Do(func() {
			began := time.Now()
			_, port, _ := strings.Cut(addr, ":")
			b.RunPython(t, b.script(), "start", name, "--base-port", port, "--root", b.ServersRoot())
			// The dead server's session outlives it: its embedded etcd
			// renews every lease when it starts again. Until the lease
			// ends (SESSION_TTL in scripts/milvus_server.py) the new
			// server counts its dead self as a node that serves, and
			// when it ends the collections that node held read "not
			// loaded" until they are loaded again.
			time.Sleep(sessionTTL + 2*time.Second)
			ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			for {
				now, err := loadStates(ctx, addr, commonpb.LoadState_LoadStateLoaded)
				if err == nil && len(now) >= len(loaded) {
					err = readsStrongly(ctx, addr, now)
				}
				if err == nil {
					t.Logf("milvus %s back, with its %d loaded collections, in %s", name, len(loaded), time.Since(began).Round(time.Second))
					return
				}
				if ctx.Err() != nil {
					t.Fatalf("milvus %s not back with its %d loaded collections: %d (%v)", name, len(loaded), len(now), err)
				}
				time.Sleep(500 * time.Millisecond)
			}
		})
	}
	t.Cleanup(restart)
	return restart
}

// readsStrongly says whether every collection of colls (db/name) answers a
// strongly consistent query: a Milvus 2.3 server killed mid-write reports
// its collections loaded minutes before such a query is answered.
func readsStrongly(ctx context.Context, addr string, colls []string) error {
	c, err := milvus.Dial(ctx, milvus.Endpoint{Address: addr})
	if err != nil {
		return err
	}
	defer c.Close()
	for _, dc := range colls {
		db, name, _ := strings.Cut(dc, "/")
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.CountWhere(qctx, db, name, "")
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", dc, err)
		}
	}
	return nil
}

// loadStates names the collections at addr in state st.
func loadStates(ctx context.Context, addr string, st commonpb.LoadState) ([]string, error) {
	c, err := milvus.Dial(ctx, milvus.Endpoint{Address: addr})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	dbs, err := c.Databases(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, db := range dbs {
		names, err := c.CollectionNames(ctx, db)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			r, err := c.Service().GetLoadState(c.In(ctx, db), &milvuspb.GetLoadStateRequest{DbName: db, CollectionName: name})
			if err != nil {
				return nil, err
			}
			if r.GetState() == st {
				out = append(out, db+"/"+name)
			}
		}
	}
	return out, nil
}

// sessionTTL is SESSION_TTL of scripts/milvus_server.py.
const sessionTTL = 10 * time.Second

func (b Bed) script() string { return filepath.Join(b.Root, "scripts", "milvus_server.py") }

// DataDir is where a test-bed server ("source" or "target") keeps its
// storage (Milvus's localStorage.path).
func (b Bed) DataDir(name string) string {
	return filepath.Join(b.ServersRoot(), "servers", name, "data")
}

// ServersRoot is where the bed's servers, and those a test starts, keep
// their files (ZDM_MILVUS_ROOT).
func (b Bed) ServersRoot() string {
	if r := os.Getenv("ZDM_MILVUS_ROOT"); r != "" {
		return r
	}
	return filepath.Join(b.Root, ".cache", "milvus")
}

// RepoRoot is the directory of go.mod above the test's package.
func RepoRoot() string {
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

// Seed creates shape on c, or fails the test.
func Seed(t testing.TB, c *milvus.Conn, shape datatools.Shape) {
	t.Helper()
	if err := datatools.Seed(context.Background(), c, shape, nil); err != nil {
		t.Fatal(err)
	}
}

// NewRand is the tests' seeded source of randomness.
func NewRand() *rand.Rand { return rand.New(rand.NewPCG(42, 42)) }
