package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/verify"
	st "github.com/zdm-io/zdm/service/servicetest"
)

// TestSegmentCopyMigrationWithWritesAndAKill moves the source by its
// segments (both clusters registered with their storage) while a client
// writes through the proxy, with zdmd killed during the copy: the target
// ends equal to the source, every acknowledged write on it once.
func TestSegmentCopyMigrationWithWritesAndAKill(t *testing.T) {
	e := newEnv(t, "")
	seedForSync(t, e.bed.Source, 20000)
	p := e.serve(t)
	src, dst := e.register(t, p, map[string]any{"proxy_listen": proxyAddr, "storage_path": e.bed.DataDir("source")})
	if code := p.Call(t, "PATCH", "/v1/clusters/"+dst, map[string]any{"storage_path": e.bed.DataDir("target")}, nil); code != 200 {
		t.Fatalf("PATCH the target's storage_path: %d", code)
	}
	writer := startWriter(t, proxyAddr, seededTargets(), 60)
	time.Sleep(time.Second)
	id := start(t, p, src, map[string]any{"lag_threshold_seconds": 5, "copy_mode": "segments"})

	p.WaitFor(t, id, waitTimeout(), func(m st.Migration) bool { return m.State == "copying" && m.Progress.RowsCopied > 0 })
	p.Kill(t)
	killed := time.Now()
	// Its calls about imports went through the relay it started, which
	// outlives it: killed while it waited for an import, the target
	// lives on (dataplane/milvus/linger).
	if !strings.Contains(p.Log(), "relay for calls about imports started") {
		t.Fatalf("zdmd called the target about imports without its relay:\n%s", p.Log())
	}
	time.Sleep(500 * time.Millisecond)
	p = e.serve(t)
	p.WaitFor(t, id, waitTimeout(), func(m st.Migration) bool { return m.State == "syncing" && m.LagSeconds != nil })
	var before, after int
	var steps []string
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("the segment copy's checkpoints:\n%s", strings.Join(steps, "\n"))
		}
	})
	for _, ev := range events(t, p, id) {
		if ev.Type == "bulk_copy_progressed" {
			steps = append(steps, ev.At.Format(time.StampMilli)+" "+string(ev.Data))
		}
		switch {
		case ev.Type == "bulk_copy_progressed" && ev.At.Before(killed):
			before++
		case ev.Type == "bulk_copy_progressed":
			after++
		}
	}
	t.Logf("checkpoints of the segment copy: %d before the kill, %d by the restarted zdmd", before, after)
	if before == 0 {
		t.Fatal("no checkpoint before the kill: the test resumed nothing")
	}
	var view struct {
		Preflight struct {
			Mode   string `json:"copy_mode"`
			Reason string `json:"copy_mode_reason"`
		} `json:"preflight"`
	}
	p.Call(t, "GET", "/v1/migrations/"+id, nil, &view)
	if view.Preflight.Mode != "segments" {
		t.Fatalf("the preflight chose %q: %s", view.Preflight.Mode, view.Preflight.Reason)
	}

	s := writer.stop(t)
	p.WaitFor(t, id, time.Minute, func(m st.Migration) bool { return m.LagSeconds != nil && *m.LagSeconds < 0.5 })
	verifyUntilEqual(t, e, verify.Options{})
	r := writer.check(t, e.bed.Target)
	t.Logf("writer through the segment copy and a kill: %d acknowledged, %d failed while zdmd was down; target: %s", s.Acknowledged, s.Failed, r)
	if code := p.Call(t, "POST", "/v1/migrations/"+id+"/stop-sync", map[string]any{"confirm_writes_stopped": true, "force": true}, nil); code != 202 {
		t.Fatalf("stop-sync: %d", code)
	}
	p.WaitFor(t, id, 2*time.Minute, func(m st.Migration) bool { return m.State == "switched_over" })
}
