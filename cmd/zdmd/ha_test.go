package main

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/zdm-io/zdm/eventstore/natscluster"
	st "github.com/zdm-io/zdm/service/servicetest"
)

// Three zdmd on a three-node JetStream cluster: the one driving the
// migration is killed during the copy and during the sync, and one is
// frozen long enough to lose its lease; each time another takes over
// within seconds and resumes from the checkpoints, and the stale one stops
// when it wakes up. The migration ends switched over with nothing done
// twice, and its history replays valid.
func TestThreeZdmdOnANATSClusterSurviveTheLossOfTheOneDriving(t *testing.T) {
	f, n := natsFleet(t, 3, "150ms")
	if _, took := f.Takeover(-1, 10*time.Second); took > 5*time.Second {
		t.Fatalf("no instance drove the migrations for %s after the start", took)
	}

	// Any instance answers any call.
	var cl map[string]any
	if code := f.Procs[1].Call(t, "POST", "/v1/clusters", map[string]any{"name": "prod", "organization": "acme", "project": "search", "endpoint": "127.0.0.1:19530"}, &cl); code != 201 {
		t.Fatalf("register: %d %v", code, cl)
	}
	var m map[string]any
	if code := f.Procs[2].Call(t, "POST", "/v1/migrations", map[string]any{"source_cluster_id": cl["id"],
		"target": map[string]any{"name": "prod-2", "project": "search", "provisioner": "simulated"}}, &m); code != 202 {
		t.Fatalf("start: %d %v", code, m)
	}
	id := m["id"].(string)

	kill := func(moment string) {
		t.Helper()
		if took := f.KillDriving(moment); took > 5*time.Second {
			t.Errorf("%s: takeover took %s, goal 5s", moment, took)
		}
	}
	f.WaitFor(id, 30*time.Second, func(s st.Migration) bool { return s.State == "copying" && s.Progress.RowsCopied >= 3000 })
	kill("copy")
	f.WaitFor(id, 30*time.Second, func(s st.Migration) bool { return s.Progress.RowsCopied >= 7000 || s.State == "syncing" })

	// A frozen holder (a long GC pause, a stalled VM) loses its lease; when
	// it wakes up it finds another holder and stands by.
	frozen := f.Driving()
	_ = f.Procs[frozen].Cmd.Process.Signal(syscall.SIGSTOP)
	next, took := f.Takeover(frozen, 15*time.Second)
	t.Logf("copy: froze zdmd-%d; zdmd-%d took over after %.2fs", frozen+1, next+1, took.Seconds())
	_ = f.Procs[frozen].Cmd.Process.Signal(syscall.SIGCONT)
	time.Sleep(500 * time.Millisecond)
	if d := f.Driving(); d != next {
		t.Fatalf("after the frozen holder woke up, instance %d drives; want %d", d+1, next+1)
	}

	f.WaitFor(id, 60*time.Second, func(s st.Migration) bool { return s.State == "syncing" })
	kill("sync")
	f.WaitFor(id, 30*time.Second, func(s st.Migration) bool { return s.State == "syncing" && s.LagSeconds != nil })
	if code := f.Any().Call(t, "POST", "/v1/migrations/"+id+"/stop-sync", map[string]any{"confirm_writes_stopped": true, "force": true}, nil); code != 202 {
		t.Fatalf("stop-sync: %d", code)
	}
	s := f.WaitFor(id, 30*time.Second, func(s st.Migration) bool { return s.State == "switched_over" || s.State == "failed" })
	if s.State != "switched_over" || s.Progress.RowsCopied != 12000 {
		t.Fatalf("ended %s with %d rows copied; want switched_over with 12000", s.State, s.Progress.RowsCopied)
	}

	stepsRun(t, n.stepLog, id)
	st.ReplayValid(t, n.bin, "--nats-url", n.cluster.URLs())
}

// fleetOn is where a natsFleet runs.
type fleetOn struct {
	bin, stepLog string
	cluster      *natscluster.Cluster
}

// natsFleet starts n zdmd on a three-node NATS cluster of their own, on
// the simulated data plane (ranges of rangeDelay).
func natsFleet(t *testing.T, n int, rangeDelay string) (*st.Fleet, fleetOn) {
	on := fleetOn{bin: st.BuildZdmd(t, "../..")}
	dir := t.TempDir()
	on.cluster = st.StartNATSCluster(t, filepath.Join(dir, "nats"), nil)
	config := filepath.Join(dir, "zdmd.yaml")
	on.stepLog = filepath.Join(dir, "steps.log")
	simulatedConfig(t, config, on.stepLog, rangeDelay, "")
	f := st.NewFleet(t, on.bin, ".", "ha-admin")
	for i := range n {
		name := fmt.Sprintf("zdmd-%d", i+1)
		f.Add("--config", config, "--data-dir", filepath.Join(dir, name), "--nats-url", on.cluster.URLs(), "--instance", name)
	}
	return f, on
}
