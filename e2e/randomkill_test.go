package e2e

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	st "github.com/zdm-io/zdm/service/servicetest"
)

// TestKillsAtRandomMomentsOfAWholeMigration kills the one zdmd (SIGKILL)
// at random moments from the start of a migration to its switch, the
// stop-sync's included, with a client writing through the proxy all the
// while; each time zdmd is started again at once. The migration must end
// switched over (its check made while writes were held found the
// clusters equal), every write the client was acknowledged on the target
// once, and the history valid. ZDM_KILL_SEED repeats
// a run (the log names its seed); ZDM_RANDOM_KILLS sets how many kills
// (4 unless set).
func TestKillsAtRandomMomentsOfAWholeMigration(t *testing.T) {
	kills := 4
	if v := os.Getenv("ZDM_RANDOM_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("ZDM_RANDOM_KILLS=%q: want a count from 1", v)
		}
		kills = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("ZDM_KILL_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("ZDM_KILL_SEED=%q: want a number", v)
		}
		seed = n
	}
	t.Logf("ZDM_KILL_SEED=%d ZDM_RANDOM_KILLS=%d", seed, kills)
	rng := rand.New(rand.NewPCG(seed, seed))

	e := newEnv(t, "  copy_workers: 2\n  copy_range_rows: 2000\n  copy_page_rows: 500\n")
	seedForSync(t, e.bed.Source, 6000)
	p := e.serve(t)
	src, _ := e.register(t, p, map[string]any{"proxy_listen": proxyAddr})
	w := startWriter(t, proxyAddr, seededTargets(), 60)
	id := start(t, p, src, map[string]any{"lag_threshold_seconds": 5})

	// The kills are spread over the copy and the sync; the stop-sync is
	// sent once the migration syncs after half of them, and the rest fall
	// in the switch, or after it (the proxy must route to the target when
	// zdmd comes back).
	stopped := false
	var where []string
	for k := 0; k < kills; k++ {
		if !stopped && k >= kills/2 {
			p.WaitFor(t, id, waitTimeout(), func(m st.Migration) bool { return m.State == "syncing" })
			if code := p.Call(t, "POST", "/v1/migrations/"+id+"/stop-sync", map[string]any{"confirm_writes_stopped": true, "force": true}, nil); code != 202 {
				t.Fatalf("stop-sync: %d", code)
			}
			stopped = true
			time.Sleep(time.Duration(rng.Int64N(int64(1500 * time.Millisecond))))
		} else {
			// The first kill falls in the first second, where the
			// migration provisions, locks and plans.
			within := 3 * time.Second
			if k == 0 {
				within = time.Second
			}
			time.Sleep(time.Duration(rng.Int64N(int64(within))))
		}
		var m st.Migration
		p.Call(t, "GET", "/v1/migrations/"+id, nil, &m)
		where = append(where, m.State)
		p.Kill(t)
		p = e.serve(t)
	}
	if !stopped {
		p.WaitFor(t, id, waitTimeout(), func(m st.Migration) bool { return m.State == "syncing" })
		if code := p.Call(t, "POST", "/v1/migrations/"+id+"/stop-sync", map[string]any{"confirm_writes_stopped": true, "force": true}, nil); code != 202 {
			t.Fatalf("stop-sync: %d", code)
		}
	}
	p.WaitFor(t, id, waitTimeout(), func(m st.Migration) bool { return m.State == "switched_over" })
	time.Sleep(2 * time.Second) // writes go to the target now
	stats := w.stop(t)
	rep := w.check(t, e.bed.Target)
	p.Stop(t)
	st.ReplayValid(t, e.bin, "--data-dir", e.dataDir)
	t.Logf("killed in %v: %d writes acknowledged, %d failed while zdmd was down; target: %s", where, stats.Acknowledged, stats.Failed, rep)
}
