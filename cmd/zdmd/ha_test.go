package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/zdm-io/zdm/eventstore/natscluster"
	st "github.com/zdm-io/zdm/service/servicetest"
)

// haFleet is several zdmd on one NATS cluster, as the operator guide sets
// them up: one secret key, a name each, every NATS address.
type haFleet struct {
	t      *testing.T
	bin    string
	args   [][]string
	listen []string
	procs  []*st.Proc
}

func (f *haFleet) start(i int) {
	f.procs[i] = st.StartServe(f.t, f.bin, ".", f.listen[i], "ha-admin", f.args[i]...)
}

// probe asks with a deadline: a frozen instance answers nothing.
var probe = &http.Client{Timeout: time.Second}

// driving returns the instance that drives the migrations, or -1.
func (f *haFleet) driving() int {
	found := -1
	for i, p := range f.procs {
		if p == nil || p.Cmd.ProcessState != nil {
			continue
		}
		resp, err := probe.Get(p.URL + "/readyz")
		if err != nil {
			continue
		}
		var r struct {
			Drives bool `json:"drives_migrations"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if r.Drives {
			if found >= 0 {
				f.t.Fatalf("instances %d and %d both drive the migrations", found+1, i+1)
			}
			found = i
		}
	}
	return found
}

// takeover waits until an instance other than old drives the migrations.
func (f *haFleet) takeover(old int, within time.Duration) (int, time.Duration) {
	f.t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if d := f.driving(); d >= 0 && d != old {
			return d, time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.t.Fatalf("no instance took over within %s", within)
	return -1, 0
}

func (f *haFleet) any() *st.Proc {
	for _, p := range f.procs {
		if p != nil && p.Cmd.ProcessState == nil {
			return p
		}
	}
	f.t.Fatal("no instance runs")
	return nil
}

func (f *haFleet) status(id string) status {
	var s status
	f.any().Call(f.t, "GET", "/v1/migrations/"+id, nil, &s)
	return s
}

func (f *haFleet) waitFor(id string, within time.Duration, ok func(status) bool) status {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := f.status(id)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("migration %s: condition not met within %s: %+v", id, within, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Three zdmd on a three-node JetStream cluster: the one driving the
// migration is killed during the copy and during the sync, and one is
// frozen long enough to lose its lease; each time another takes over
// within seconds and resumes from the checkpoints, and the stale one stops
// when it wakes up. The migration ends switched over with nothing done
// twice, and its history replays valid.
func TestThreeZdmdOnANATSClusterSurviveTheLossOfTheOneDriving(t *testing.T) {
	bin := st.BuildZdmd(t, "../..")
	dir := t.TempDir()
	cluster, err := natscluster.Start(context.Background(), filepath.Join(dir, "nats"), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Stop)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	t.Setenv("ZDM_SECRET_KEY", base64.StdEncoding.EncodeToString(key))
	stepLog, config := filepath.Join(dir, "steps.log"), filepath.Join(dir, "zdmd.yaml")
	st.WriteFile(t, config, `
dataplane: simulated
simulated:
  step_log: %s
  collections: 3
  ranges_per_collection: 8
  rows_per_range: 500
  range_delay: 150ms
  lag_start: 40
  lag_step: 50ms
saga:
  lag_record_interval: 100ms
  tick: 20ms
ha:
  lease_ttl: 2s
`, stepLog)
	f := &haFleet{t: t, bin: bin, procs: make([]*st.Proc, 3)}
	for i := range 3 {
		name := fmt.Sprintf("zdmd-%d", i+1)
		f.listen = append(f.listen, st.FreeAddr(t))
		f.args = append(f.args, []string{"--config", config, "--data-dir", filepath.Join(dir, name), "--nats-url", cluster.URLs(), "--instance", name})
		f.start(i)
	}
	if _, took := f.takeover(-1, 10*time.Second); took > 5*time.Second {
		t.Fatalf("no instance drove the migrations for %s after the start", took)
	}

	// Any instance answers any call.
	var cl map[string]any
	if code := f.procs[1].Call(t, "POST", "/v1/clusters", map[string]any{"name": "prod", "organization": "acme", "project": "search", "endpoint": "127.0.0.1:19530"}, &cl); code != 201 {
		t.Fatalf("register: %d %v", code, cl)
	}
	var m map[string]any
	if code := f.procs[2].Call(t, "POST", "/v1/migrations", map[string]any{"source_cluster_id": cl["id"],
		"target": map[string]any{"name": "prod-2", "project": "search", "provisioner": "simulated"}}, &m); code != 202 {
		t.Fatalf("start: %d %v", code, m)
	}
	id := m["id"].(string)

	kill := func(moment string) {
		t.Helper()
		old := f.driving()
		if old < 0 {
			t.Fatalf("%s: no instance drives the migration", moment)
		}
		f.procs[old].Kill(t)
		next, took := f.takeover(old, 15*time.Second)
		t.Logf("%s: killed zdmd-%d; zdmd-%d took over after %.2fs", moment, old+1, next+1, took.Seconds())
		if took > 5*time.Second {
			t.Errorf("%s: takeover took %s, goal 5s", moment, took)
		}
		f.start(old)
	}
	f.waitFor(id, 30*time.Second, func(s status) bool { return s.State == "copying" && s.Progress.RowsCopied >= 3000 })
	kill("copy")
	f.waitFor(id, 30*time.Second, func(s status) bool { return s.Progress.RowsCopied >= 7000 || s.State == "syncing" })

	// A frozen holder (a long GC pause, a stalled VM) loses its lease; when
	// it wakes up it finds another holder and stands by.
	frozen := f.driving()
	_ = f.procs[frozen].Cmd.Process.Signal(syscall.SIGSTOP)
	next, took := f.takeover(frozen, 15*time.Second)
	t.Logf("copy: froze zdmd-%d; zdmd-%d took over after %.2fs", frozen+1, next+1, took.Seconds())
	_ = f.procs[frozen].Cmd.Process.Signal(syscall.SIGCONT)
	time.Sleep(500 * time.Millisecond)
	if d := f.driving(); d != next {
		t.Fatalf("after the frozen holder woke up, instance %d drives; want %d", d+1, next+1)
	}

	f.waitFor(id, 60*time.Second, func(s status) bool { return s.State == "syncing" })
	kill("sync")
	f.waitFor(id, 30*time.Second, func(s status) bool { return s.State == "syncing" && s.LagSeconds != nil })
	if code := f.any().Call(t, "POST", "/v1/migrations/"+id+"/stop-sync", map[string]any{"confirm_writes_stopped": true, "force": true}, nil); code != 202 {
		t.Fatalf("stop-sync: %d", code)
	}
	s := f.waitFor(id, 30*time.Second, func(s status) bool { return s.State == "switched_over" || s.State == "failed" })
	if s.State != "switched_over" || s.Progress.RowsCopied != 12000 {
		t.Fatalf("ended %s with %d rows copied; want switched_over with 12000", s.State, s.Progress.RowsCopied)
	}

	stepsRun(t, stepLog, id)
	replayValid(t, bin, "--nats-url", cluster.URLs())
}
