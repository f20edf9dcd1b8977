// Command demo is zdm's main job: a real migration between two local Milvus
// servers while a client keeps writing through the zdm proxy. It seeds the
// source, runs zdmd, migrates, stops the sync once the lag is under the
// threshold, switches over, and proves that every acknowledged write is on
// the target. `make demo` starts the servers and runs it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/zdm-io/zdm/apiclient"
	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/verify"
	"github.com/zdm-io/zdm/projections"
)

type config struct {
	source, target, proxy, api, zdmd, work, python, root string
	rows                                                 int64
	rate                                                 float64
	ha                                                   bool
}

func main() {
	var c config
	flag.StringVar(&c.source, "source", "127.0.0.1:19530", "source Milvus")
	flag.StringVar(&c.target, "target", "127.0.0.1:19560", "target Milvus (registered as a spare)")
	flag.StringVar(&c.proxy, "proxy", "127.0.0.1:19590", "where the zdm proxy listens")
	flag.StringVar(&c.api, "api", "127.0.0.1:18480", "zdmd API address")
	flag.StringVar(&c.zdmd, "zdmd", "bin/zdmd", "zdmd binary")
	flag.StringVar(&c.work, "work", "", "working directory (default: a new temporary one)")
	flag.StringVar(&c.python, "python", ".cache/venv/bin/python", "python of the test bed")
	flag.StringVar(&c.root, "root", ".", "repository root")
	flag.Int64Var(&c.rows, "rows", 100000, "rows to seed, in total")
	flag.Float64Var(&c.rate, "rate", 50, "client writes per second during the migration")
	flag.BoolVar(&c.ha, "ha", false, "run three zdmd on a three-node NATS cluster behind HAProxy, and kill the driving one mid-sync and mid-switch (make demo-ha)")
	flag.Parse()
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Printf(format+"\n", args...) }

func run(c config) (err error) {
	ctx := context.Background()
	if c.work == "" {
		dir, merr := os.MkdirTemp("", "zdm-demo-")
		if merr != nil {
			return merr
		}
		// A failed demo keeps zdmd's logs and the client's journal (err is
		// run's own result: a variable of this block by that name would
		// hide it, and the logs were deleted).
		defer func() {
			if err != nil {
				fmt.Fprintf(os.Stderr, "demo: zdmd's logs and the client's acknowledged writes are kept in %s\n", dir)
				return
			}
			os.RemoveAll(dir)
		}()
		c.work = dir
	}
	src, err := milvus.Dial(ctx, milvus.Endpoint{Address: c.source})
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := milvus.Dial(ctx, milvus.Endpoint{Address: c.target})
	if err != nil {
		return err
	}
	defer dst.Close()

	say("== 1. seed the source %s (%d rows) and empty the target %s", c.source, c.rows, c.target)
	if err := dst.DropEverything(ctx); err != nil {
		return err
	}
	if err := src.DropEverything(ctx); err != nil {
		return err
	}
	per := c.rows / 5
	shapes := []datatools.Shape{
		{Databases: 1, Collections: 2, Partitions: 1, Rows: per, Dim: 32, PKType: "int64", Dynamic: true, Index: "IVF_FLAT", Aliases: true, Load: true, Shards: 2, Seed: 1, Prefix: "shop_"},
		{Databases: 1, Collections: 2, Rows: per, Dim: 32, PKType: "varchar", Dynamic: true, Index: "HNSW", Aliases: true, Load: true, Shards: 1, Seed: 2, Prefix: "docs_"},
		{Databases: 1, DefaultDB: true, Collections: 1, Rows: c.rows - 4*per, Dim: 32, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Seed: 3, Prefix: "events_"},
	}
	began := time.Now()
	var targets []datatools.CollectionName
	for _, s := range shapes {
		if err := datatools.Seed(ctx, src, s, nil); err != nil {
			return err
		}
		for _, db := range s.DatabaseNames() {
			for j := 0; j < s.Collections; j++ {
				targets = append(targets, datatools.CollectionName{Database: db, Collection: s.CollectionName(j)})
			}
		}
	}
	say("   seeded %d collections in %s", len(targets), time.Since(began).Round(time.Second))

	cfgPath := filepath.Join(c.work, "zdmd.yaml")
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		a, _ := filepath.Abs(filepath.Join(c.root, p))
		return a
	}
	cfgText := fmt.Sprintf("dataplane: milvus\nmilvus:\n  python: %s\n  server_script: %s\n  server_root: %s\n",
		abs(c.python), abs("scripts/milvus_server.py"), abs(".cache/milvus"))
	api := apiclient.New("http://"+c.api, "demo-admin")
	proxyListen := c.proxy
	var ha *fleet
	if c.ha {
		const proxyBase = 19600
		if ha, err = startFleet(ctx, c, cfgText, proxyBase); err != nil {
			return err
		}
		defer ha.stop()
		api = apiclient.New("http://"+ha.apis[0], "demo-admin")
		proxyListen = fmt.Sprintf("127.0.0.1:%d", proxyBase)
	} else {
		say("== 2. start zdmd (embedded NATS) with the source behind the proxy %s", c.proxy)
		stop, err := startOne(c, cfgPath, cfgText)
		if err != nil {
			return err
		}
		defer stop()
	}
	if err := api.WaitReady(ctx, 30*time.Second); err != nil {
		return err
	}
	var cl struct{ ID string }
	if err := api.Do(ctx, "POST", "/v1/clusters", map[string]any{"name": "prod", "organization": "acme", "project": "search", "endpoint": c.source, "proxy_listen": proxyListen}, &cl); err != nil {
		return err
	}
	sourceID := cl.ID
	if err := api.Do(ctx, "POST", "/v1/clusters", map[string]any{"name": "prod-next", "organization": "acme", "project": "search", "endpoint": c.target, "spare": true}, &cl); err != nil {
		return err
	}
	if err := waitProxy(ctx, c.proxy); err != nil { // the proxy starts from the registry
		return err
	}

	say("== 3. a client writes %.0f times a second through the proxy, for the whole migration", c.rate)
	w, err := startWriter(ctx, c.proxy, targets, c.rate, filepath.Join(c.work, "acknowledged.jsonl"))
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second)

	say("== 4. migrate (provisioner pool: the spare %s)", c.target)
	m := &projections.MigrationView{}
	if err := api.Do(ctx, "POST", "/v1/migrations", map[string]any{"source_cluster_id": sourceID,
		"target": map[string]any{"name": "prod-next", "project": "search", "provisioner": "pool"}}, m); err != nil {
		return err
	}
	id := m.ID
	migBegan := time.Now()
	var syncSince time.Time
	var copyRate float64
	var copySecs float64
	for {
		var err error
		if m, err = api.Migration(ctx, id); err != nil {
			return err
		}
		say("   [%4.0fs] %s", time.Since(migBegan).Seconds(), line(m))
		if m.State == "failed" || m.State == "cancelled" {
			return fmt.Errorf("the migration ended %s: %s %s", m.State, m.FailureReason, m.FailureDetail)
		}
		if m.Progress.StartedAt != nil && m.Progress.UpdatedAt != nil && m.State != "copying" && copySecs == 0 {
			copySecs = m.Progress.UpdatedAt.Sub(*m.Progress.StartedAt).Seconds()
			copyRate = float64(m.Progress.RowsCopied) / copySecs
		}
		if m.State == "syncing" && syncSince.IsZero() {
			syncSince = time.Now()
		}
		if ha != nil && len(ha.kills) == 0 && m.State == "syncing" && time.Since(syncSince) > 2*time.Second {
			if err := ha.killDriving(c.zdmd, "mid-sync"); err != nil {
				return err
			}
			syncSince = time.Now() // the operator watches a few more seconds of sync
		}
		// Stop once the lag is under the threshold and the operator saw a
		// few seconds of sync.
		if m.State == "syncing" && m.LagSeconds != nil && *m.LagSeconds < m.Options.LagThresholdSeconds && time.Since(syncSince) > 6*time.Second {
			break
		}
		time.Sleep(2 * time.Second)
	}

	before, err := w.acknowledged()
	if err != nil {
		return err
	}
	if before == 0 {
		_, werr := w.stop()
		return fmt.Errorf("the client had no write acknowledged before the switch (%v); see %s", werr, filepath.Join(c.work, "zdmd.log"))
	}
	say("== 5. stop the sync (confirmed; the client keeps writing: the proxy holds its writes during the switch)")
	if err := api.Do(ctx, "POST", "/v1/migrations/"+id+"/stop-sync", map[string]any{"confirm_writes_stopped": true}, m); err != nil {
		return err
	}
	if ha != nil {
		if err := ha.killDriving(c.zdmd, "mid-switch"); err != nil {
			return err
		}
	}
	for m.State != "switched_over" {
		time.Sleep(300 * time.Millisecond)
		var err error
		if m, err = api.Migration(ctx, id); err != nil {
			return err
		}
		if m.State == "failed" {
			return fmt.Errorf("the switch failed: %s %s", m.FailureReason, m.FailureDetail)
		}
	}
	say("   switched over: applications now reach %s through the proxy %s", m.Target.Connection.Endpoint, c.proxy)
	atSwitch, err := w.acknowledged()
	if err != nil {
		return err
	}
	time.Sleep(3 * time.Second)
	stats, err := w.stop()
	if err != nil {
		return err
	}
	after, err := w.acknowledged()
	if err != nil {
		return err
	}
	if after <= atSwitch {
		return fmt.Errorf("the client had no write acknowledged after the switch (%d before it, %d in all)", atSwitch, after)
	}
	// Read once the client stopped, so that its pauses are the switch's.
	seeded, err := checkSeeded(ctx, src, dst, shapes)
	if err != nil {
		return err
	}
	say("   the seeded rows, read from the target directly: %s", seeded)

	say("== 6. prove it: every write the client was acknowledged is on the target, once")
	f, err := os.Open(w.path)
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := datatools.Check(ctx, dst, f)
	if err != nil {
		return err
	}
	say("   %s", rep)
	finalLag := 0.0
	if m.LagSeconds != nil {
		finalLag = *m.LagSeconds
	}
	pause, parts := 0.0, ""
	if m.WritePauseMS != nil {
		pause = *m.WritePauseMS
	}
	if p := m.WritePause; p != nil {
		parts = " (" + p.String() + ")"
	}
	say("")
	say("== summary")
	say("   rows copied            %d in %.1fs (%.0f rows/s)", m.Progress.RowsCopied, copySecs, copyRate)
	if d, err := toSync(ctx, api, id); err == nil {
		say("   lock to sync           %.1fs (the structure, the rows, then indexes, loads and the check after the copy)", d.Seconds())
	} else {
		say("   lock to sync           not known: %v", err)
	}
	say("   sync lag               max %.1fs, final %.1fs", m.MaxLagSeconds, finalLag)
	say("   write pause at switch  %.0f ms held by zdm%s; longest gap between two acknowledged client writes %s", pause, parts, stats.MaxGap.Round(time.Millisecond))
	say("   client writes          %d acknowledged (%d before the stop, %d after the switch), %d failed, %d lost, %d duplicated",
		stats.Acknowledged, before, after-atSwitch, stats.Failed, rep.Missing+rep.Stale, rep.Duplicated)
	say("   seeded rows            %s", seeded)
	say("   verification           %s", verdict(m))
	say("   target                 %s (source %s kept, status Migrated)", m.Target.Connection.Endpoint, c.source)
	if ha != nil {
		say("   failures survived      %s", strings.Join(ha.kills, "; "))
		say("   (a write that failed while an instance took over was refused to the client, which may retry it; the check counts it as possibly applied)")
	}
	if !rep.OK() || stats.Failed > 0 && ha == nil {
		return fmt.Errorf("writes were lost, duplicated or failed")
	}
	return nil
}

func line(m *projections.MigrationView) string {
	s := fmt.Sprintf("%-18s rows %d/%d", m.State, m.Progress.RowsCopied, m.Progress.RowsTotal)
	if m.State == "copying" && m.Progress.RowsPerSecond > 0 {
		s += fmt.Sprintf(" (%.0f rows/s", m.Progress.RowsPerSecond)
		if m.Progress.ETASeconds != nil {
			s += fmt.Sprintf(", ETA %.0fs", *m.Progress.ETASeconds)
		}
		s += ")"
	}
	if m.LagSeconds != nil {
		s += fmt.Sprintf("  lag %.1fs", *m.LagSeconds)
	}
	return s
}

// verdict prints what each verification found, as zdm recorded it.
func verdict(m *projections.MigrationView) string {
	var out []string
	for _, v := range m.Verification {
		var rep verify.Report
		found := "equal"
		if err := json.Unmarshal(v.Report, &rep); err == nil {
			found = rep.Summary()
		} else if !v.Equal {
			found = "differs (no report recorded)"
		}
		switch {
		case v.Phase == "copy" && !v.Equal:
			// Taken while the writer kept writing: the sync replays what
			// the copy could not see.
			out = append(out, "after the copy, not yet equal while the writer kept writing ("+found+"); the sync replayed those writes")
		case v.Phase == "copy":
			out = append(out, "after the copy: "+found)
		case v.Phase == "switch":
			out = append(out, "at the switch, writes held: "+found)
		default:
			out = append(out, fmt.Sprintf("%s: %s", v.Phase, found))
		}
	}
	return strings.Join(out, "; ")
}

// startOne runs one zdmd on its embedded NATS, as make demo does.
func startOne(c config, cfgPath, cfgText string) (stop func(), err error) {
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return nil, err
	}
	zdmd := exec.Command(c.zdmd, "serve", "--config", cfgPath, "--data-dir", filepath.Join(c.work, "data"), "--listen", c.api, "--nats-listen", "none", "--log-level", "warn")
	zdmd.Env = append(os.Environ(), "ZDM_ADMIN_TOKEN=demo-admin")
	logFile, _ := os.Create(filepath.Join(c.work, "zdmd.log"))
	zdmd.Stdout, zdmd.Stderr = logFile, logFile
	if err := zdmd.Start(); err != nil {
		return nil, err
	}
	return func() {
		_ = zdmd.Process.Signal(syscall.SIGTERM)
		_ = zdmd.Wait()
	}, nil
}

// waitProxy waits until a Milvus client gets an answer through addr.
func waitProxy(ctx context.Context, addr string) error {
	if err := milvus.WaitAnswer(ctx, addr, 30*time.Second); err != nil {
		return fmt.Errorf("no Milvus answers through the proxy %s: %w", addr, err)
	}
	return nil
}
