package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	st "github.com/zdm-io/zdm/service/servicetest"
)

type status = st.Migration

var replayLine = regexp.MustCompile(`^(\S+)\s+seq=(\d+)\s+\S+\s+\S+\s+(\S+) (.*)$`)

// history runs zdmd replay on a stopped zdmd's data directory.
func history(t *testing.T, bin, dataDir, id string) []string {
	t.Helper()
	out, err := exec.Command(bin, "replay", "--data-dir", dataDir, id).CombinedOutput()
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := replayLine.FindStringSubmatch(sc.Text()); m != nil {
			lines = append(lines, m[2]+" "+m[3]+" "+m[4])
		}
	}
	return lines
}

func TestRestartAfterKillResumesWithoutRepeatingSteps(t *testing.T) {
	bin := st.BuildZdmd(t, "../..")
	dir := t.TempDir()
	dataDir, stepLog := filepath.Join(dir, "data"), filepath.Join(dir, "steps.log")
	config := filepath.Join(dir, "zdmd.yaml")
	simulatedConfig(t, config, stepLog, "60ms", "")
	listen := st.FreeAddr(t)
	serve := func() *st.Proc {
		return st.StartServe(t, bin, ".", listen, "restart-admin", "--config", config, "--data-dir", dataDir)
	}
	p := serve()
	call := func(t *testing.T, method, path string, body, out any) int { return p.Call(t, method, path, body, out) }

	var cl map[string]any
	if code := call(t, "POST", "/v1/clusters", map[string]any{"name": "prod", "organization": "acme", "project": "search", "endpoint": "127.0.0.1:19530"}, &cl); code != 201 {
		t.Fatalf("register: %d %v", code, cl)
	}
	var m map[string]any
	if code := call(t, "POST", "/v1/migrations", map[string]any{"source_cluster_id": cl["id"],
		"target": map[string]any{"name": "prod-2", "project": "search", "provisioner": "simulated"}}, &m); code != 202 {
		t.Fatalf("start: %d %v", code, m)
	}
	id := m["id"].(string)

	// Kill it half-way through the copy.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var s status
		call(t, "GET", "/v1/migrations/"+id, nil, &s)
		if s.State == "copying" && s.Progress.RowsCopied >= 4000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no copy progress: %+v\n%s", s, p.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.Kill(t)
	before := history(t, bin, dataDir, id)
	checkpointed := map[string]bool{}
	var lastSeq uint64
	for _, line := range before {
		var seq uint64
		fmt.Sscanf(line, "%d", &seq)
		lastSeq = seq
		if strings.Contains(line, "bulk_copy_progressed") {
			var e struct{ Database, Collection, Range string }
			_ = json.Unmarshal([]byte(line[strings.Index(line, "{"):]), &e)
			checkpointed[fmt.Sprintf("%s/%s/%s", e.Database, e.Collection, e.Range)] = true
		}
	}
	if len(checkpointed) == 0 || len(checkpointed) >= 24 {
		t.Fatalf("killed at %d checkpoints; want a kill half-way", len(checkpointed))
	}

	// Restart: the status catches up with the history and the copy resumes.
	p = serve()
	var s status
	for deadline := time.Now().Add(10 * time.Second); ; {
		call(t, "GET", "/v1/migrations/"+id, nil, &s)
		if s.Seq >= lastSeq || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.Progress.RowsCopied < int64(len(checkpointed))*500 || s.Progress.RowsTotal != 12000 {
		t.Fatalf("status after restart lost progress: %+v (had %d ranges)", s, len(checkpointed))
	}
	for deadline := time.Now().Add(30 * time.Second); s.State != "syncing"; {
		if time.Now().After(deadline) {
			t.Fatalf("did not reach syncing: %+v\n%s", s, p.Log())
		}
		time.Sleep(20 * time.Millisecond)
		call(t, "GET", "/v1/migrations/"+id, nil, &s)
	}
	if code := call(t, "POST", "/v1/migrations/"+id+"/stop-sync", map[string]any{"confirm_writes_stopped": true, "force": true}, nil); code != 202 {
		t.Fatalf("stop-sync: %d", code)
	}
	for deadline := time.Now().Add(30 * time.Second); s.State != "switched_over"; {
		if time.Now().After(deadline) {
			t.Fatalf("did not switch: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
		call(t, "GET", "/v1/migrations/"+id, nil, &s)
	}
	if s.Progress.RowsCopied != 12000 {
		t.Fatalf("copied %d rows, want 12000 (a range counted twice or lost)", s.Progress.RowsCopied)
	}
	p.Stop(t)

	// The history before the kill is the start of the history after it.
	after := history(t, bin, dataDir, id)
	if len(after) <= len(before) {
		t.Fatalf("history did not grow: %d then %d", len(before), len(after))
	}
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("history changed at %d:\n%s\n%s", i, before[i], after[i])
		}
	}
	// No completed step ran twice: a range checkpointed before the kill was
	// not copied again, and provisioning happened once.
	count := stepsRun(t, stepLog, id)
	for key := range checkpointed {
		if n := count["copy "+key]; n != 1 {
			t.Errorf("range %s was checkpointed before the kill and copied %d times", key, n)
		}
	}
	st.ReplayValid(t, bin, "--data-dir", dataDir)
}

// simulatedConfig writes a zdmd.yaml for the simulated data plane: three
// collections of 8 ranges of 500 rows, each range taking rangeDelay, the
// steps logged to stepLog; extra adds lines.
func simulatedConfig(t *testing.T, path, stepLog, rangeDelay, extra string) {
	st.WriteFile(t, path, `
dataplane: simulated
simulated:
  step_log: %s
  collections: 3
  ranges_per_collection: 8
  rows_per_range: 500
  range_delay: %s
  lag_start: 40
  lag_step: 50ms
saga:
  lag_record_interval: 100ms
  tick: 20ms
%s`, stepLog, rangeDelay, extra)
}

// stepsRun counts the steps the simulated data plane logged for a
// migration, checking that none that completed ran twice: provisioning,
// planning and the switch once, a range at most twice (once cut off).
func stepsRun(t *testing.T, stepLog, id string) map[string]int {
	t.Helper()
	data, err := os.ReadFile(stepLog)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		count[strings.TrimPrefix(line, id+" ")]++
	}
	for _, step := range []string{"provision", "plan", "switch"} {
		if count[step] != 1 {
			t.Errorf("step %s ran %d times", step, count[step])
		}
	}
	for key, n := range count {
		if n > 2 {
			t.Errorf("%s ran %d times", key, n)
		}
	}
	return count
}
