package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/verify"
	st "github.com/zdm-io/zdm/service/servicetest"
)

// pyWriter is testdata's pymilvus writer, running through the proxy.
type pyWriter struct {
	cmd           *exec.Cmd
	out           bytes.Buffer
	journal, stop string
	// stderr keeps what it said of each failed write, and why it ended.
	stderr string
}

// startPyWriter starts a writer whose new keys start at first.
func startPyWriter(t *testing.T, e *env, script, name string, first int) *pyWriter {
	t.Helper()
	w := &pyWriter{journal: filepath.Join(e.dir, name+".jsonl"), stop: filepath.Join(e.dir, name+".stop"), stderr: filepath.Join(e.dir, name+".stderr")}
	w.cmd = exec.Command(e.bed.Python, script, "writer", proxyAddr, w.journal, w.stop, strconv.Itoa(first))
	w.cmd.Stdout = &w.out
	errs, err := os.Create(w.stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer errs.Close()
	w.cmd.Stderr = errs
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if w.cmd.ProcessState == nil {
			_ = w.cmd.Process.Kill()
			_ = w.cmd.Wait()
		}
	})
	return w
}

// acknowledged counts the writes acknowledged so far, and those of kind op.
func (w *pyWriter) acknowledged(t *testing.T, op string) (all, ofKind int) {
	t.Helper()
	data, err := os.ReadFile(w.journal)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		all++
		if strings.Contains(line, `"op": "`+op+`"`) {
			ofKind++
		}
	}
	return all, ofKind
}

// finish stops the writer.
func (w *pyWriter) finish(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(w.stop, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Wait(); err != nil {
		said, _ := os.ReadFile(w.stderr)
		t.Fatalf("writer: %v\n%s\nthe end of its standard error (all of it in %s):\n%s", err, w.out.String(), w.stderr, said[max(0, len(said)-4000):])
	}
}

// check checks the writer's journal against addr: every acknowledged
// write there once, every acknowledged delete done.
func (w *pyWriter) check(t *testing.T, e *env, script, addr string) (acked int) {
	t.Helper()
	out := pythonOut(t, e, script, "check", addr, w.journal)
	var rep struct {
		Acknowledged int      `json:"acknowledged"`
		Problems     []string `json:"problems"`
		ProblemCount int      `json:"problem_count"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("check said %s: %v", out, err)
	}
	if rep.Acknowledged == 0 || rep.ProblemCount != 0 {
		t.Fatalf("writer %s (%s): %d acknowledged, %d not as acknowledged on %s: %v", filepath.Base(w.journal), strings.TrimSpace(w.out.String()),
			rep.Acknowledged, rep.ProblemCount, addr, rep.Problems)
	}
	t.Logf("writer %s: %s; %d acknowledged writes, each on %s as acknowledged", filepath.Base(w.journal), strings.TrimSpace(w.out.String()), rep.Acknowledged, addr)
	return rep.Acknowledged
}

// pythonOut runs a script with the test bed's python and returns what it
// printed (its log lines go to stderr).
func pythonOut(t *testing.T, e *env, script string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(e.bed.Python, append([]string{script}, args...)...).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("%s %v: %v\n%s", filepath.Base(script), args, err, msg)
	}
	return out
}

// TestEveryTypeMigratesThroughKillsWithPymilvusWrites migrates a source
// holding every type and shape while a pymilvus application writes through
// the proxy (inserts, upserts, deletes by key and by expression, writes to
// a partition, inserts whose keys the server gives), with zdmd killed
// (SIGKILL) during the copy, during the sync and during the switch.
func TestEveryTypeMigratesThroughKillsWithPymilvusWrites(t *testing.T) {
	e := newEnv(t, "  copy_workers: 1\n  copy_readers: 1\n  copy_page_rows: 50\n  copy_range_rows: 100\n")
	script := filepath.Join(e.bed.Root, "dataplane", "milvus", "milvustest", "testdata", "every_type.py")
	e.bed.RunPython(t, script, "seed", e.bed.Source, "3000")
	p := e.serve(t)
	src, _ := e.register(t, p, map[string]any{"proxy_listen": proxyAddr})
	first := startPyWriter(t, e, script, "before", 0)
	time.Sleep(time.Second)
	id := start(t, p, src, map[string]any{"lag_threshold_seconds": 5})

	p.WaitFor(t, id, waitTimeout(), func(m st.Migration) bool { return m.State == "copying" && m.Progress.RowsCopied > 0 })
	p.Kill(t)
	p = e.serve(t)
	p.WaitFor(t, id, waitTimeout(), func(m st.Migration) bool { return m.State == "syncing" && m.LagSeconds != nil })
	time.Sleep(2 * time.Second)
	p.Kill(t)
	p = e.serve(t)
	p.WaitFor(t, id, waitTimeout(), func(m st.Migration) bool { return m.State == "syncing" && m.LagSeconds != nil })

	// The application pauses: once the lag is 0 the clusters are equal,
	// field by field and structure by structure, through zdm and pymilvus.
	first.finish(t)
	first.check(t, e, script, e.bed.Source)
	p.WaitFor(t, id, time.Minute, func(m st.Migration) bool { return m.LagSeconds != nil && *m.LagSeconds < 0.5 })
	verifyUntilEqual(t, e, verify.Options{SampleEvery: 1})
	if src, dst := pythonOut(t, e, script, "dump", e.bed.Source), pythonOut(t, e, script, "dump", e.bed.Target); !bytes.Equal(src, dst) {
		t.Fatal("pymilvus reads the two clusters differently after the sync")
	}
	first.check(t, e, script, e.bed.Target)

	// It writes again across the switch, during which zdmd is killed.
	second := startPyWriter(t, e, script, "across", 20000)
	time.Sleep(2 * time.Second)
	stopSyncKilledInTheSwitch(t, e, p, id)
	_, autoAtSwitch := second.acknowledged(t, "auto")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if _, auto := second.acknowledged(t, "auto"); auto >= autoAtSwitch+5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no inserts without keys were acknowledged after the switch")
		}
	}
	second.finish(t)
	second.check(t, e, script, e.bed.Target)
	rep, err := verify.Verify(context.Background(), milvustest.Dial(t, e.bed.Source), milvustest.Dial(t, e.bed.Target), verify.Options{})
	if err != nil || len(rep.Structure) != 0 {
		t.Fatalf("structure after the switch: %v %v", rep.Structure, err)
	}
}
