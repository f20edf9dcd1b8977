package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/verify"
	st "github.com/zdm-io/zdm/service/servicetest"
)

// TestASegmentCopySharedByThreeZdmdSurvivesTheDriversDeath runs a
// segment copy on three zdmd sharing a three-node NATS cluster secured
// with TLS (nats-cluster-tls.conf, mutual TLS from every zdmd): the
// instances that do not drive import partitions too, the driving one
// freezes during the copy and is killed once another took over, and the copy ends with the target equal to the
// source, no partition imported twice.
func TestASegmentCopySharedByThreeZdmdSurvivesTheDriversDeath(t *testing.T) {
	e := newEnv(t, "")
	seed(t, e.bed.Source, datatools.Shape{Databases: 1, Collections: 3, Partitions: 3, Rows: 12000, Dim: 16, PKType: "int64",
		Index: "FLAT", Load: true, Prefix: "segsh_"})
	cluster := startTLSCluster(t, e)
	f, _ := startFleetOn(t, e, 3, cluster.Cluster, cluster.args...)
	f.Takeover(-1, 15*time.Second)
	src, dst := e.register(t, f.Procs[0], map[string]any{"storage_path": e.bed.DataDir("source")})
	if code := f.Any().Call(t, "PATCH", "/v1/clusters/"+dst, map[string]any{"storage_path": e.bed.DataDir("target")}, nil); code != 200 {
		t.Fatalf("PATCH the target's storage_path: %d", code)
	}
	id := start(t, f.Procs[1], src, map[string]any{"copy_mode": "segments"})
	f.WaitFor(id, waitTimeout(), func(m st.Migration) bool {
		return m.State == "copying" && m.Progress.RowsCopied > 0 || m.State == "syncing"
	})
	// The driving instance freezes (SIGSTOP), as a stalled host does,
	// until another has taken over, then dies (SIGKILL): the one taking
	// over resumes partitions it began, and the frozen one, fenced, adds
	// nothing. It is restarted, as KillDriving does.
	everyProc := slices.Clone(f.Procs) // the killed instance's log goes with it when it is restarted
	old, _ := f.Takeover(-1, 30*time.Second)
	if err := f.Procs[old].Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	next, took := f.Takeover(old, 30*time.Second)
	time.Sleep(3 * time.Second)
	f.Procs[old].Kill(t)
	t.Logf("copy: froze zdmd-%d; zdmd-%d took over after %.2fs; then killed the frozen one", old+1, next+1, took.Seconds())
	f.Start(old)
	f.WaitFor(id, waitTimeout(), func(m st.Migration) bool { return m.State == "syncing" })
	everyProc = append(everyProc, f.Procs...)

	seen := map[*st.Proc]bool{}
	var by []string
	helped := 0
	for i, p := range everyProc {
		if seen[p] {
			continue
		}
		seen[p] = true
		log := p.Log()
		n, h := strings.Count(log, `msg="partition imported"`), strings.Count(log, `msg="partition imported for the driving zdmd"`)
		helped += h
		by = append(by, fmt.Sprintf("zdmd-%d: %d driving, %d helping", i%3+1, n, h))
	}
	t.Logf("partitions imported (the killed instance's log, then those after the restart): %s", strings.Join(by, "; "))
	if helped == 0 {
		t.Fatal("no instance that does not drive imported a partition: the segment copy was not shared")
	}
	target := milvustest.Dial(t, e.bed.Target)
	for i := 0; i < 3; i++ {
		if n, err := target.CountWhere(context.Background(), "segsh_db0", fmt.Sprintf("segsh_c%d", i), ""); err != nil || n != 12000 {
			t.Fatalf("segsh_c%d on the target: %d rows (%v), want 12000: a partition was imported twice, or missed", i, n, err)
		}
	}
	verifyUntilEqual(t, e, verify.Options{SampleEvery: 1})
	if code := f.Any().Call(t, "POST", "/v1/migrations/"+id+"/stop-sync", map[string]any{"confirm_writes_stopped": true, "force": true}, nil); code != 202 {
		t.Fatalf("stop-sync: %d", code)
	}
	f.WaitFor(id, 2*time.Minute, func(m st.Migration) bool { return m.State == "switched_over" })
}
