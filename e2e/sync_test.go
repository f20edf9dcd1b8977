package e2e

import (
	"testing"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/verify"
	st "github.com/zdm-io/zdm/service/servicetest"
)

const proxyAddr = "127.0.0.1:19590"

func seededTargets() []datatools.CollectionName {
	var out []datatools.CollectionName
	for _, dc := range [][2]string{{"sync_db0", "sync_c0"}, {"sync_db0", "sync_c1"}, {"sync_db1", "sync_c0"}, {"sync_db1", "sync_c1"}, {"default", "str_c0"}} {
		out = append(out, datatools.CollectionName{Database: dc[0], Collection: dc[1]})
	}
	return out
}

func seedForSync(t *testing.T, addr string, rows int64) {
	seed(t, addr,
		datatools.Shape{Databases: 2, Collections: 2, Partitions: 1, Rows: rows, Dim: 16, PKType: "int64", Dynamic: true, Index: "IVF_FLAT", Aliases: true, Load: true, Prefix: "sync_"},
		datatools.Shape{Databases: 1, DefaultDB: true, Collections: 1, Rows: rows / 2, Dim: 16, PKType: "varchar", Dynamic: true, Index: "FLAT", Load: true, Prefix: "str_"},
	)
}

// TestZeroDowntimeMigrationWithKills writes through the proxy during the
// whole copy and sync, with zdmd killed once during the copy and once
// during the sync; then a second client writes across the switch.
func TestZeroDowntimeMigrationWithKills(t *testing.T) {
	e := newEnv(t, "  copy_workers: 2\n  copy_range_rows: 4000\n  copy_page_rows: 1000\n")
	seedForSync(t, e.bed.Source, 20000)
	p := e.serve(t)
	src, _ := e.register(t, p, map[string]any{"proxy_listen": proxyAddr})
	first := startWriter(t, proxyAddr, seededTargets(), 60)
	time.Sleep(time.Second)
	id := start(t, p, src, map[string]any{"lag_threshold_seconds": 5})

	// Killed during the copy.
	p.WaitFor(t, id, waitTimeout(), func(m st.Migration) bool { return m.State == "copying" && m.Progress.RowsCopied >= 20000 })
	p.Kill(t)
	time.Sleep(500 * time.Millisecond)
	p = e.serve(t)
	// Killed during the sync.
	p.WaitFor(t, id, waitTimeout(), func(m st.Migration) bool { return m.State == "syncing" && m.LagSeconds != nil })
	time.Sleep(3 * time.Second)
	p.Kill(t)
	p = e.serve(t)
	p.WaitFor(t, id, waitTimeout(), func(m st.Migration) bool { return m.State == "syncing" && m.LagSeconds != nil })

	// The first client stops; once the lag is 0, the target holds every
	// write it was acknowledged, and the clusters are identical.
	s1 := first.stop(t)
	p.WaitFor(t, id, time.Minute, func(m st.Migration) bool { return m.LagSeconds != nil && *m.LagSeconds < 0.5 })
	verifyUntilEqual(t, e, verify.Options{})
	r1 := first.check(t, e.bed.Target)
	t.Logf("writer 1 (through two kills): %d acknowledged, %d failed while zdmd was down; target: %s", s1.Acknowledged, s1.Failed, r1)

	// The second client writes across the switch: no write fails.
	second := startWriter(t, proxyAddr, seededTargets(), 60)
	time.Sleep(3 * time.Second)
	var out map[string]any
	if code := p.Call(t, "POST", "/v1/migrations/"+id+"/stop-sync", map[string]any{"confirm_writes_stopped": true, "force": true}, &out); code != 202 {
		t.Fatalf("stop-sync: %d %v", code, out)
	}
	m := p.WaitFor(t, id, 2*time.Minute, func(m st.Migration) bool { return m.State == "switched_over" })
	time.Sleep(3 * time.Second) // writes go to the target now
	s2 := second.stop(t)
	if s2.Failed != 0 {
		t.Fatalf("%d client writes failed across the switch (last: %s)", s2.Failed, s2.LastErr)
	}
	r2 := second.check(t, e.bed.Target)
	var view struct {
		WritePauseMS *float64 `json:"write_pause_ms"`
		WritePause   *struct {
			DrainMS float64 `json:"drain_ms"`
			CheckMS float64 `json:"check_ms"`
		} `json:"write_pause"`
	}
	p.Call(t, "GET", "/v1/migrations/"+id, nil, &view)
	if view.WritePauseMS == nil || view.WritePause == nil {
		t.Fatalf("no write pause recorded: %+v", m)
	}
	// The check reads both clusters while writes are held, so it takes
	// some time; the parts never add up to more than the pause (each is
	// in whole microseconds; their sum in floating point may exceed it by
	// a rounding error).
	if wp := view.WritePause; wp.CheckMS <= 0 || wp.DrainMS < 0 || wp.DrainMS+wp.CheckMS > *view.WritePauseMS+0.001 {
		t.Fatalf("write pause %.1f ms split as drain %.1f ms and check %.1f ms", *view.WritePauseMS, wp.DrainMS, wp.CheckMS)
	}
	t.Logf("writer 2 across the switch: %d acknowledged, 0 failed, longest pause between acknowledged writes %s (zdm held writes %.0f ms: drain %.0f, check %.0f); target: %s",
		s2.Acknowledged, s2.MaxGap, *view.WritePauseMS, view.WritePause.DrainMS, view.WritePause.CheckMS, r2)
	var clusters struct {
		Clusters []struct{ Name, Status string } `json:"clusters"`
	}
	p.Call(t, "GET", "/v1/clusters", nil, &clusters)
	for _, c := range clusters.Clusters {
		if (c.Name == "prod" && c.Status != "Migrated") || (c.Name == "spare" && c.Status != "Running") {
			t.Fatalf("registry after the switch: %+v", clusters)
		}
	}
}
