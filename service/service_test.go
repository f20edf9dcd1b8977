package service_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/retry"
	"github.com/zdm-io/zdm/service"
	st "github.com/zdm-io/zdm/service/servicetest"
)

func TestDeletedProjectionConsumersRebuildIdenticalViews(t *testing.T) {
	dir := t.TempDir()
	cfg := st.Config(dir)
	s := st.Start(t, cfg)
	src := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, map[string]any{"name": "prod", "organization": "acme", "project": "search", "endpoint": "127.0.0.1:19530", "proxy_listen": "127.0.0.1:19540"}).JSON(t)["id"].(string)
	s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, map[string]any{"name": "old", "organization": "acme", "project": "ads", "endpoint": "127.0.0.1:19531"})
	ids := []string{}
	for _, stop := range []bool{true, false} {
		r := s.Do(t, "POST", "/v1/migrations", st.OrgAdminToken, map[string]any{"source_cluster_id": src,
			"target": map[string]any{"name": "next", "project": "search", "provisioner": "simulated"}})
		id := r.JSON(t)["id"].(string)
		ids = append(ids, id)
		s.WaitState(t, id, "syncing", 10*time.Second)
		if stop {
			s.Do(t, "POST", "/v1/migrations/"+id+"/stop-sync", st.OrgAdminToken, map[string]any{"confirm_writes_stopped": true, "force": true})
			s.WaitState(t, id, "switched_over", 10*time.Second)
		} else {
			s.Do(t, "POST", "/v1/migrations/"+id+"/cancel", st.OrgAdminToken, nil)
			s.WaitState(t, id, "cancelled", 10*time.Second)
		}
		// Let the clean-up reach the registry before the next one starts.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if s.Do(t, "GET", "/v1/clusters/"+src, st.AdminToken, nil).JSON(t)["status"] != "Locked" {
				break
			}
		}
	}
	snapshot := func(s *st.Server) [][]byte {
		var out [][]byte
		for _, p := range append([]string{"/v1/clusters", "/v1/migrations"}, "/v1/migrations/"+ids[0], "/v1/migrations/"+ids[1]) {
			out = append(out, s.Do(t, "GET", p, st.AdminToken, nil).Body)
		}
		return out
	}
	before := snapshot(s)
	s.Stop()

	// Deleting the consumers makes the next start rebuild from the first event.
	s = st.Start(t, cfg)
	ctx := context.Background()
	for _, name := range []string{"view-migrations", "view-clusters"} {
		if err := s.Store().DeleteConsumer(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	// A wrong stored view that only a rebuild from the first event replaces.
	kv, err := s.Store().KV(ctx, "ZDM_VIEW_MIGRATIONS")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Put(ctx, ids[0], []byte(`{"id":"`+ids[0]+`","state":"bogus","seq":999999999}`)); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	s = st.Start(t, cfg)
	var after [][]byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		after = snapshot(s)
		same := true
		for i := range before {
			same = same && bytes.Equal(before[i], after[i])
		}
		if same {
			return
		}
	}
	for i := range before {
		if !bytes.Equal(before[i], after[i]) {
			t.Errorf("view %d differs after the rebuild:\nbefore %s\nafter  %s", i, before[i], after[i])
		}
	}
}

func TestExternalNATSByURL(t *testing.T) {
	ext, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()
	cfg := st.Config(t.TempDir())
	cfg.NATSURL = ext.ClientURL()
	s := st.Start(t, cfg)
	r := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, map[string]any{"name": "prod", "organization": "acme", "project": "search", "endpoint": "127.0.0.1:19530"})
	if r.Status != 201 {
		t.Fatalf("register over external NATS: %d %s", r.Status, r.Body)
	}
	// The events are in the external server's stream.
	nc, err := ext.Connect("check")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	store, err := eventstore.Open(context.Background(), nc)
	if err != nil {
		t.Fatal(err)
	}
	if subjects, err := store.Subjects(context.Background(), domain.ClusterSubject); err != nil || len(subjects) != 1 {
		t.Fatalf("external stream holds %v (%v)", subjects, err)
	}
}

func TestAnExternalNATSRestartedUnderZdmdIsRejoined(t *testing.T) {
	dir := t.TempDir()
	ext, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	url := ext.ClientURL()
	cfg := st.Config(t.TempDir())
	cfg.NATSURL = url
	s := st.Start(t, cfg)
	register := func(name string) st.Response {
		return s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, map[string]any{"name": name, "organization": "acme", "project": "search", "endpoint": "127.0.0.1:19530"})
	}
	if r := register("before"); r.Status != 201 {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	ext.Close()
	// While NATS is away nothing can be stored: the answer says so, and
	// is not a success.
	if r := register("during"); r.Status != 503 || !strings.Contains(string(r.Body), "store_unavailable") {
		t.Fatalf("register with NATS down: %d %s", r.Status, r.Body)
	}
	ext, err = eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: dir, Listen: strings.TrimPrefix(url, "nats://")})
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()
	// zdmd reconnects by itself: writes are stored again, and the views
	// (fed by consumers that lived through the restart) catch up.
	deadline := time.Now().Add(30 * time.Second)
	for r := register("after"); r.Status != 201; r = register("after") {
		if time.Now().After(deadline) {
			t.Fatalf("register after the restart: %d %s", r.Status, r.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for {
		var names []string
		for _, c := range s.Do(t, "GET", "/v1/clusters", st.OrgAdminToken, nil).JSON(t)["clusters"].([]any) {
			names = append(names, c.(map[string]any)["name"].(string))
		}
		if strings.Join(names, ",") == "before,after" || strings.Join(names, ",") == "after,before" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("clusters listed after the restart: %v", names)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConfigOutOfRangeIsRefusedAtStart(t *testing.T) {
	for key, set := range map[string]func(*service.Config){
		"saga.step_attempts":   func(c *service.Config) { c.Saga.StepAttempts = -1 },
		"saga.retry_backoff":   func(c *service.Config) { c.Saga.RetryBackoff = -time.Second },
		"milvus.copy_workers":  func(c *service.Config) { c.Milvus.CopyWorkers = -2 },
		"retry.copy.factor":    func(c *service.Config) { c.Retry.Copy.Factor = 0.5 },
		"retry.journal.first":  func(c *service.Config) { c.Retry.Journal.First = -time.Millisecond },
		"retry.apply.attempts": func(c *service.Config) { c.Retry.Apply.Attempts = 3 },
		"dataplane":            func(c *service.Config) { c.DataPlane = "fake" },
	} {
		dir := t.TempDir()
		cfg := st.Config(dir)
		set(&cfg)
		_, err := service.NewMain(context.Background(), cfg, "", slog.Default())
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: got %v", key, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s: a refused configuration wrote %d files", key, len(entries))
		}
	}
}

func TestRetryPoliciesLoadFromTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zdmd.yaml")
	yml := "retry:\n  copy: {attempts: 6, first: 300ms, factor: 3, max: 10s}\nsaga:\n  step_attempts: 7\n"
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := service.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := retry.Policy{Attempts: 6, First: 300 * time.Millisecond, Factor: 3, Max: 10 * time.Second}
	if cfg.Retry.Copy != want {
		t.Fatalf("retry.copy = %+v, want %+v", cfg.Retry.Copy, want)
	}
	if cfg.Saga.StepAttempts != 7 {
		t.Fatalf("saga.step_attempts = %d", cfg.Saga.StepAttempts)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// A file zdmd cannot read is told in the file's terms: the key it does not
// know, the value that is not what its setting takes, and the line.
func TestAConfigFileIsRefusedInItsOwnTerms(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zdmd.yaml")
	yml := "listen: 127.0.0.1:1\ncolour: blue\nsaga:\n  tick: soon\nnats_replicas: three\n"
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := service.LoadConfig(path)
	for _, want := range []string{"line 2: colour is not a setting zdmd knows", "line 4: `soon` is not a duration", "line 5: `three` is not a whole number"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "service.") {
		t.Errorf("the message names a Go type: %v", err)
	}
}
