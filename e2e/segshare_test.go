package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
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
// instances that do not drive import partitions too, the driving one is
// killed during the copy, and the copy ends with the target equal to the
// source, no partition imported twice.
func TestASegmentCopySharedByThreeZdmdSurvivesTheDriversDeath(t *testing.T) {
	e := newEnv(t, "")
	seed(t, e.bed.Source, datatools.Shape{Databases: 1, Collections: 3, Partitions: 3, Rows: 12000, Dim: 16, PKType: "int64",
		Index: "FLAT", Load: true, Prefix: "segsh_"})
	f, _, _ := startHAFleet(t, e, 3)
	f.Takeover(-1, 15*time.Second)
	src, dst := e.register(t, f.Procs[0], map[string]any{"storage_path": e.bed.DataDir("source")})
	if code := f.Any().Call(t, "PATCH", "/v1/clusters/"+dst, map[string]any{"storage_path": e.bed.DataDir("target")}, nil); code != 200 {
		t.Fatalf("PATCH the target's storage_path: %d", code)
	}
	id := start(t, f.Procs[1], src, map[string]any{"copy_mode": "segments"})
	f.WaitFor(id, waitTimeout(), func(m st.Migration) bool {
		return m.State == "copying" && m.Progress.RowsCopied > 0 || m.State == "syncing"
	})
	// The driving instance dies, killed maybe in the middle of a call
	// about an import: its relay (dataplane/milvus/linger) keeps the
	// target alive. KillDriving restarts it once another took over.
	everyProc := slices.Clone(f.Procs) // the killed instance's log goes with it when it is restarted
	t.Logf("copy: the driving zdmd killed; another took over after %.2fs", f.KillDriving("copy").Seconds())
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
