// Package e2e runs whole migrations between the test bed's two real Milvus
// servers, through a real zdmd process.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/verify"
	st "github.com/zdm-io/zdm/service/servicetest"
)

const token = "e2e-admin"

// binPath is zdmd, built once for every test of the package by TestMain.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "zdm-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	root, _ := filepath.Abs("..")
	if binPath, err = st.BuildZdmdInto(dir, root); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func zdmd(*testing.T, string) string { return binPath }

// env is one end-to-end setup: the test bed, reset, and a zdmd config.
type env struct {
	bed     milvustest.Bed
	bin     string
	dir     string
	config  string
	dataDir string
	listen  string
}

// newEnv resets the test bed and writes a zdmd config; milvusExtra adds
// lines to its milvus section (indented by two spaces).
func newEnv(t *testing.T, milvusExtra string) *env {
	bed := milvustest.Empty(t)
	e := &env{bed: bed, bin: zdmd(t, bed.Root), dir: t.TempDir(), listen: st.FreeAddr(t)}
	e.config, e.dataDir = filepath.Join(e.dir, "zdmd.yaml"), filepath.Join(e.dir, "data")
	t.Cleanup(func() {
		if t.Failed() {
			e.postMortem(t)
		}
	})
	st.WriteFile(t, e.config, `dataplane: milvus
milvus:
  python: %s
  server_script: %s
  server_root: %s
%ssaga:
  lag_record_interval: 1s
  retry_backoff: 200ms
`, bed.Python, filepath.Join(bed.Root, "scripts", "milvus_server.py"), bed.ServersRoot(), milvusExtra)
	return e
}

func (e *env) serve(t *testing.T) *st.Proc {
	return st.StartServe(t, e.bin, e.dir, e.listen, token, "--config", e.config, "--data-dir", e.dataDir)
}

// register adds the source and the target (as a spare) to the registry.
func (e *env) register(t *testing.T, p *st.Proc, sourceExtra map[string]any) (src, dst string) {
	body := map[string]any{"name": "prod", "organization": "acme", "project": "search", "endpoint": e.bed.Source}
	for k, v := range sourceExtra {
		body[k] = v
	}
	var out map[string]any
	if code := p.Call(t, "POST", "/v1/clusters", body, &out); code != 201 {
		t.Fatalf("register source: %d %v", code, out)
	}
	src = out["id"].(string)
	if code := p.Call(t, "POST", "/v1/clusters", map[string]any{"name": "spare", "organization": "acme", "project": "search",
		"endpoint": e.bed.Target, "spare": true}, &out); code != 201 {
		t.Fatalf("register target: %d %v", code, out)
	}
	return src, out["id"].(string)
}

func start(t *testing.T, p *st.Proc, src string, options map[string]any) string {
	var out map[string]any
	if options == nil {
		options = map[string]any{}
	}
	options["auto_id"] = "preserve_keys"
	if code := p.Call(t, "POST", "/v1/migrations", map[string]any{"source_cluster_id": src,
		"target": map[string]any{"name": "prod-next", "project": "search", "provisioner": "pool"}, "options": options}, &out); code != 202 {
		t.Fatalf("start: %d %v", code, out)
	}
	return out["id"].(string)
}

// event is one entry of a migration's history, its type shortened
// ("sync_stopped").
type event struct {
	Seq  uint64          `json:"seq"`
	At   time.Time       `json:"at"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// events reads a migration's whole history.
func events(t *testing.T, p *st.Proc, id string) []event {
	var out []event
	after := uint64(0)
	for {
		var page struct {
			Events    []event `json:"events"`
			NextAfter uint64  `json:"next_after"`
			More      bool    `json:"more"`
		}
		p.Call(t, "GET", fmt.Sprintf("/v1/migrations/%s/events?limit=1000&after=%d", id, after), nil, &page)
		for _, e := range page.Events {
			e.Type = strings.TrimPrefix(strings.TrimSuffix(e.Type, ".v1"), "zdm.migration.")
			out = append(out, e)
		}
		if !page.More {
			return out
		}
		after = page.NextAfter
	}
}

// eventTypes lists the types of a migration's history.
func eventTypes(t *testing.T, p *st.Proc, id string) []string {
	var types []string
	for _, e := range events(t, p, id) {
		types = append(types, e.Type)
	}
	return types
}

func count(types []string, typ string) int {
	n := 0
	for _, x := range types {
		if x == typ {
			n++
		}
	}
	return n
}

func seed(t *testing.T, addr string, shapes ...datatools.Shape) {
	c := milvustest.Dial(t, addr)
	for _, s := range shapes {
		if s.Shards == 0 {
			s.Shards = 1
		}
		if err := datatools.Seed(context.Background(), c, s, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func waitTimeout() time.Duration { return 5 * time.Minute }

// stopSyncKilledInTheSwitch stops the sync (forced, with writes still
// going) and kills zdmd (SIGKILL) at once, while it switches; it returns
// the restarted zdmd once the migration switched over.
func stopSyncKilledInTheSwitch(t *testing.T, e *env, p *st.Proc, id string) *st.Proc {
	t.Helper()
	if code := p.Call(t, "POST", "/v1/migrations/"+id+"/stop-sync", map[string]any{"confirm_writes_stopped": true, "force": true}, nil); code != 202 {
		t.Fatalf("stop-sync: %d", code)
	}
	p.Kill(t)
	p = e.serve(t)
	p.WaitFor(t, id, 2*time.Minute, func(m st.Migration) bool { return m.State == "switched_over" })
	return p
}

// stopSyncKilledInTheHold stops the sync (forced, with writes still
// going) and kills zdmd (SIGKILL) as soon as its log says it holds the
// writes for the switch. It checks from the history that the switch had
// not finished when zdmd died, and that the restarted zdmd finished it
// once; it returns the restarted zdmd.
func stopSyncKilledInTheHold(t *testing.T, e *env, p *st.Proc, id string) *st.Proc {
	t.Helper()
	if code := p.Call(t, "POST", "/v1/migrations/"+id+"/stop-sync", map[string]any{"confirm_writes_stopped": true, "force": true}, nil); code != 202 {
		t.Fatalf("stop-sync: %d", code)
	}
	for deadline := time.Now().Add(2 * time.Minute); !strings.Contains(p.Log(), "writes held for the switch"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("zdmd never held the writes:\n%s", p.Log())
		}
	}
	p.Kill(t)
	killed := time.Now()
	p = e.serve(t)
	p.WaitFor(t, id, 2*time.Minute, func(m st.Migration) bool { return m.State == "switched_over" })
	var stopped, switched []time.Time
	for _, ev := range events(t, p, id) {
		switch ev.Type {
		case "sync_stopped":
			stopped = append(stopped, ev.At)
		case "switched_over":
			switched = append(switched, ev.At)
		}
	}
	if len(stopped) != 1 || !stopped[0].Before(killed) || len(switched) != 1 || !switched[0].After(killed) {
		t.Fatalf("killed at %s in the hold: sync stopped at %v, switched over at %v; want one stop before the kill, one switch after it",
			killed.Format(time.StampMilli), stopped, switched)
	}
	return p
}

// postMortem says, for a failed test, which keys differ between the test
// bed's clusters (zdmd is stopped by then: the processes' own cleanups
// ran first) and keeps the writers' journals beside zdmd's logs
// (keepFiles).
func (e *env) postMortem(t *testing.T) {
	rep, err := verify.Verify(context.Background(), milvustest.Dial(t, e.bed.Source), milvustest.Dial(t, e.bed.Target), verify.Options{SampleEvery: 1})
	if err != nil {
		t.Logf("post-mortem: verify: %v", err)
	} else {
		for _, c := range rep.Collections {
			if !c.Equal {
				t.Logf("post-mortem: %s/%s: %d rows on the source, %d on the target; missing %d, extra %d, different %d: %v",
					c.Database, c.Collection, c.SourceRows, c.TargetRows, c.Missing, c.Extra, c.Different, c.Mismatches)
			}
		}
	}
	e.keepFiles(t)
}

// keepFiles copies the writers' journals and the other *.jsonl the test
// wrote in its directory to testout/<test>/, beside zdmd's logs.
func (e *env) keepFiles(t *testing.T) {
	kept := filepath.Join(milvustest.RepoRoot(), "testout", strings.ReplaceAll(t.Name(), "/", "_"))
	journals, _ := filepath.Glob(filepath.Join(e.dir, "*.jsonl"))
	for _, j := range journals {
		data, err := os.ReadFile(j)
		if err == nil {
			err = os.MkdirAll(kept, 0o755)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(kept, filepath.Base(j)), data, 0o644)
		}
		if err != nil {
			t.Logf("post-mortem: %s not kept: %v", filepath.Base(j), err)
		}
	}
}

// verifyUntilEqual verifies the test bed's clusters until they are equal,
// for up to a minute, and fails the test if they never are.
func verifyUntilEqual(t *testing.T, e *env, opt verify.Options) {
	t.Helper()
	src, dst := milvustest.Dial(t, e.bed.Source), milvustest.Dial(t, e.bed.Target)
	var rep *verify.Report
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		var err error
		if rep, err = verify.Verify(context.Background(), src, dst, opt); err != nil {
			t.Fatal(err)
		}
		if rep.Equal {
			return
		}
	}
	t.Fatalf("source and target differ after the sync: %+v", rep)
}

// keepForPostMortem writes the writer's journal and the migration's
// history where the post-mortem keeps them: a target missing rows is
// explained by the writes of those keys and the steps around them.
func keepForPostMortem(t *testing.T, e *env, w *writer, p *st.Proc, id string) {
	keep := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(e.dir, name), data, 0o644); err != nil {
			t.Logf("post-mortem: %s not kept: %v", name, err)
		}
	}
	// The writer's journal first: the history needs a zdmd that answers.
	keep("writer.jsonl", w.journalBytes())
	if p == nil {
		t.Log("post-mortem: history not kept: no zdmd runs")
		return
	}
	history, err := p.Get("/v1/migrations/" + id + "/events?limit=1000")
	if err != nil {
		t.Logf("post-mortem: history not kept: %v", err)
		return
	}
	keep("history.jsonl", history)
}
