package main

import (
	"bufio"
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/projections"
	st "github.com/zdm-io/zdm/service/servicetest"
)

var watchLine = regexp.MustCompile(`^\S+ migration=(\S+) state=(\S+) stage=(\S+) copied=(\d+)/(\d+) percent=(\S+) rows_per_second=(\d+) eta=(\S+) lag=(\S+)(?: (reason|target)=(\S+))?$`)

// watch runs `zdmd migration watch --plain` and returns its lines as they
// come, and its exit code when it ends.
func watch(t *testing.T, bin string, p *st.Proc, id string) (<-chan string, <-chan int) {
	t.Helper()
	cmd := exec.Command(bin, "migration", "watch", id, "--plain", "--interval", "100ms", "--api", p.URL, "--token", p.Token)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines, code := make(chan string, 1000), make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		err := cmd.Wait()
		var ee *exec.ExitError
		switch {
		case err == nil:
			code <- 0
		case errors.As(err, &ee):
			t.Logf("watch stderr: %s", stderr.String())
			code <- ee.ExitCode()
		default:
			code <- -1
		}
	}()
	return lines, code
}

func startSimulated(t *testing.T) (string, *st.Proc, string) {
	t.Helper()
	bin := st.BuildZdmd(t, "../..")
	dir := t.TempDir()
	config := filepath.Join(dir, "zdmd.yaml")
	st.WriteFile(t, config, `
dataplane: simulated
simulated:
  collections: 2
  ranges_per_collection: 5
  rows_per_range: 1000
  range_delay: 150ms
  lag_start: 400
  lag_step: 100ms
saga:
  lag_record_interval: 100ms
  tick: 20ms
`)
	p := st.StartServe(t, bin, ".", st.FreeAddr(t), "watch-admin", "--config", config, "--data-dir", filepath.Join(dir, "data"))
	var cl map[string]any
	if code := p.Call(t, "POST", "/v1/clusters", map[string]any{"name": "prod", "organization": "acme", "project": "search", "endpoint": "127.0.0.1:19530"}, &cl); code != 201 {
		t.Fatalf("register: %d %v", code, cl)
	}
	return bin, p, cl["id"].(string)
}

func startMigration(t *testing.T, p *st.Proc, src, name string) string {
	t.Helper()
	var m map[string]any
	if code := p.Call(t, "POST", "/v1/migrations", map[string]any{"source_cluster_id": src,
		"target": map[string]any{"name": name, "project": "search", "provisioner": "simulated"}}, &m); code != 202 {
		t.Fatalf("start: %d %v", code, m)
	}
	return m["id"].(string)
}

func TestWatchFollowsAMigrationToItsEnd(t *testing.T) {
	bin, p, src := startSimulated(t)
	id := startMigration(t, p, src, "prod-2")
	lines, code := watch(t, bin, p, id)

	p.WaitFor(t, id, 60*time.Second, func(m st.Migration) bool {
		return m.State == "syncing" && m.LagSeconds != nil && *m.LagSeconds < 10
	})
	if status := p.Call(t, "POST", "/v1/migrations/"+id+"/stop-sync", map[string]any{"confirm_writes_stopped": true}, nil); status != 202 {
		t.Fatalf("stop-sync: %d", status)
	}

	var got [][]string
	timeout := time.After(60 * time.Second)
	for done := false; !done; {
		select {
		case l, ok := <-lines:
			if !ok {
				done = true
				break
			}
			m := watchLine.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("not a watch line: %q", l)
			}
			got = append(got, m)
		case <-timeout:
			t.Fatal("watch did not end with the migration")
		}
	}
	if c := <-code; c != 0 {
		t.Fatalf("watch exited %d after a switch-over, want 0", c)
	}
	states := map[string]bool{}
	var lastCopied int64
	var partial bool
	for i, m := range got {
		if m[1] != id {
			t.Fatalf("line %d is about %s", i, m[1])
		}
		states[m[2]] = true
		copied, _ := strconv.ParseInt(m[4], 10, 64)
		total, _ := strconv.ParseInt(m[5], 10, 64)
		if copied < lastCopied {
			t.Fatalf("progress went back: %d after %d", copied, lastCopied)
		}
		lastCopied = copied
		partial = partial || (m[2] == "copying" && copied > 0 && copied < total)
		if i > 0 && strings.Join(m[2:], " ") == strings.Join(got[i-1][2:], " ") {
			t.Fatalf("line %d repeats the one before: %v", i, m[0])
		}
	}
	for _, s := range []string{"copying", "syncing", "switched_over"} {
		if !states[s] {
			t.Fatalf("no line in state %s: %v", s, states)
		}
	}
	if !partial {
		t.Fatal("no line showed the copy part-way")
	}
	last := got[len(got)-1]
	if last[2] != "switched_over" || last[10] != "target" || last[11] == "" || last[4] != last[5] {
		t.Fatalf("last line: %s", last[0])
	}
	var lagged bool
	for _, m := range got {
		lagged = lagged || (m[2] == "syncing" && m[9] != "-")
	}
	if !lagged {
		t.Fatal("no syncing line showed the lag")
	}
}

func TestWatchExitCodeSaysHowItEnded(t *testing.T) {
	bin, p, src := startSimulated(t)
	id := startMigration(t, p, src, "prod-3")
	lines, code := watch(t, bin, p, id)
	p.WaitFor(t, id, 30*time.Second, func(m st.Migration) bool { return m.State == "copying" })
	if status := p.Call(t, "POST", "/v1/migrations/"+id+"/cancel", nil, nil); status != 202 {
		t.Fatalf("cancel: %d", status)
	}
	var last string
	for l := range lines {
		last = l
	}
	if c := <-code; c != exitCancelled {
		t.Fatalf("watch exited %d after a cancel, want %d", c, exitCancelled)
	}
	if !strings.Contains(last, "state=cancelled") {
		t.Fatalf("last line: %s", last)
	}

	// An unknown migration is an error naming it, at once.
	out, err := exec.Command(bin, "migration", "watch", "m-nope", "--plain", "--api", p.URL, "--token", p.Token).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "404") {
		t.Fatalf("unknown migration: %v %s", err, out)
	}
	out, err = exec.Command(bin, "migration", "watch", id, "--interval", "1ms", "--api", p.URL, "--token", p.Token).CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "--interval") {
		t.Fatalf("bad interval: %v %s", err, out)
	}
}

func TestWatchFrameDrawsABarPerCollection(t *testing.T) {
	eta, lag := 12.0, 3.5
	m := &projections.MigrationView{ID: "m-1", State: domain.StateCopying, Stage: "migration", LagSeconds: &lag}
	m.Options.LagThresholdSeconds = 10
	m.Progress.RowsCopied, m.Progress.RowsTotal, m.Progress.ETASeconds = 1500, 3000, &eta
	m.Progress.Collections = []projections.CollectionView{
		{Database: "db1", Collection: "docs", RowsCopied: 1000, RowsTotal: 1000, Done: true},
		{Database: "db1", Collection: "images", RowsCopied: 500, RowsTotal: 2000, ETASeconds: &eta, RowsPerSecond: 250},
	}
	f := strings.Join(frame(m), "\n")
	for _, want := range []string{
		"db1.docs   [##############################] 100.0%  1,000/1,000 rows  done",
		"db1.images [#######-----------------------]  25.0%  500/2,000 rows  250 rows/s  ETA 12s",
		"total      [###############---------------]  50.0%  1,500/3,000 rows",
		"lag 3.5s (threshold 10s, max 0s)",
	} {
		if !strings.Contains(f, want) {
			t.Errorf("frame lacks %q:\n%s", want, f)
		}
	}
	if strings.Contains(f, "segments") {
		t.Errorf("a row copy's frame speaks of segments:\n%s", f)
	}
	m.Progress.SegmentsCopied, m.Progress.BytesCopied = 12, 3<<29
	if f := strings.Join(frame(m), "\n"); !strings.Contains(f, "segments staged on the target 12 (1.5 GiB)") {
		t.Errorf("a segment copy's frame:\n%s", f)
	}
	if l := plainLine(m); !strings.HasSuffix(l, "lag=3.5s segments=12 bytes=1610612736") {
		t.Errorf("plain line: %s", l)
	}
	// A cancelled migration has no rate or ETA left, and its collections
	// not copied say so.
	m.State = domain.StateCancelled
	f = strings.Join(frame(m), "\n")
	if strings.Contains(f, "ETA") || strings.Contains(f, "rows/s") || !strings.Contains(f, "500/2,000 rows  stopped") {
		t.Errorf("a cancelled migration's frame:\n%s", f)
	}
	// Once every collection is copied, the total gives the copy's rate and no ETA.
	m.State, m.Progress.RowsCopied, m.Progress.RowsPerSecond = domain.StateSyncing, 3000, 1200
	m.Progress.Collections[1].RowsCopied, m.Progress.Collections[1].Done = 2000, true
	f = strings.Join(frame(m), "\n")
	if strings.Contains(f, "ETA") || !strings.Contains(f, "total      [##############################] 100.0%  3,000/3,000 rows  copied at 1,200 rows/s") {
		t.Errorf("a copied migration's frame:\n%s", f)
	}
}

// A note is printed once, when it is first seen, whichever the view.
func TestWatchPrintsEachNoteOnce(t *testing.T) {
	for _, tty := range []bool{false, true} {
		var out strings.Builder
		w := &watcher{out: &out, tty: tty}
		m := &projections.MigrationView{ID: "m-1", State: domain.StateSyncing, Stage: "migration"}
		w.show(m)
		m.Notes = []projections.NoteView{{Note: "d/c is loaded with the server's default replicas"}}
		w.show(m)
		w.show(m)
		m.Notes = append(m.Notes, projections.NoteView{Note: "role r is not given on the target"})
		w.show(m)
		got := out.String()
		if strings.Count(got, "note: d/c is loaded") != 1 || strings.Count(got, "note: role r") != 1 {
			t.Errorf("tty %v: notes printed\n%s", tty, got)
		}
	}
}
