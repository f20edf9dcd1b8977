package api_test

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
	st "github.com/zdm-io/zdm/service/servicetest"
)

func TestMigrationEndpoints(t *testing.T) {
	cfg := st.Config(t.TempDir())
	// A lag that stays above the threshold, so stop-sync can be refused.
	cfg.Simulated.LagStart, cfg.Simulated.LagStep = 1000, time.Hour
	s := st.Start(t, cfg)
	src := registerCluster(t, s, "prod")
	before := historySize(t, s)
	expectRefusals(t, s, "/v1/migrations", []refusal{
		{"malformed", st.OrgAdminToken, `{`, 400, "malformed_json", ""},
		{"missing source", st.OrgAdminToken, map[string]any{"target": map[string]any{"name": "n", "project": "search", "provisioner": "simulated"}}, 400, "invalid_field", "source_cluster_id"},
		{"unknown source", st.OrgAdminToken, map[string]any{"source_cluster_id": "c-nope", "target": map[string]any{"name": "n", "project": "search", "provisioner": "simulated"}}, 400, "invalid_field", "source_cluster_id"},
		{"source wrong type", st.OrgAdminToken, `{"source_cluster_id": 5}`, 400, "invalid_field", "source_cluster_id"},
		{"missing target name", st.OrgAdminToken, map[string]any{"source_cluster_id": src, "target": map[string]any{"project": "search", "provisioner": "simulated"}}, 400, "invalid_field", "target.name"},
		{"bad provisioner", st.OrgAdminToken, map[string]any{"source_cluster_id": src, "target": map[string]any{"name": "n", "project": "search", "provisioner": "aws"}}, 400, "invalid_field", "target.provisioner"},
		{"unknown target project", st.OrgAdminToken, map[string]any{"source_cluster_id": src, "target": map[string]any{"name": "n", "project": "zzz", "provisioner": "simulated"}}, 400, "invalid_field", "target.project"},
		{"R1 cross organization", st.AdminToken, map[string]any{"source_cluster_id": src, "target": map[string]any{"name": "n", "project": "web", "organization": "globex", "provisioner": "simulated"}}, 400, "cross_organization", "target.organization"},
		{"bad time limit", st.OrgAdminToken, map[string]any{"source_cluster_id": src, "target": map[string]any{"name": "n", "project": "search", "provisioner": "simulated"}, "options": map[string]any{"sync_time_limit": "soon"}}, 400, "invalid_field", "options.sync_time_limit"},
		{"bad policy", st.OrgAdminToken, map[string]any{"source_cluster_id": src, "target": map[string]any{"name": "n", "project": "search", "provisioner": "simulated"}, "options": map[string]any{"on_forbidden_op": "ignore"}}, 400, "invalid_field", "options.on_forbidden_op"},
		{"threshold 0 given", st.OrgAdminToken, map[string]any{"source_cluster_id": src, "target": map[string]any{"name": "n", "project": "search", "provisioner": "simulated"}, "options": map[string]any{"lag_threshold_seconds": 0}}, 400, "invalid_field", "options.lag_threshold_seconds"},
		{"threshold wrong type", st.OrgAdminToken, `{"source_cluster_id":"x","options":{"lag_threshold_seconds":"ten"}}`, 400, "invalid_field", "options.lag_threshold_seconds"},
		{"R12 viewer", st.ViewerToken, map[string]any{"source_cluster_id": src, "target": map[string]any{"name": "n", "project": "search", "provisioner": "simulated"}}, 403, "forbidden", ""},
		{"R12 other project", st.ProjectAdminToken, map[string]any{"source_cluster_id": src, "target": map[string]any{"name": "n", "project": "ads", "provisioner": "simulated"}}, 403, "forbidden", ""},
		{"other organization", st.OtherOrgToken, map[string]any{"source_cluster_id": src, "target": map[string]any{"name": "n", "project": "search", "provisioner": "simulated"}}, 400, "invalid_field", "source_cluster_id"},
		{"provisioner this zdmd lacks", st.OrgAdminToken, map[string]any{"source_cluster_id": src, "target": map[string]any{"name": "n", "project": "search", "provisioner": "local"}}, 400, "invalid_field", "target.provisioner"},
		{"emails from a zdmd without an SMTP server", st.OrgAdminToken, map[string]any{"source_cluster_id": src, "target": map[string]any{"name": "n", "project": "search", "provisioner": "simulated"},
			"options": map[string]any{"notify": []string{"ops@example.com"}}}, 400, "invalid_field", "options.notify"},
	})
	if after := historySize(t, s); after != before {
		t.Fatalf("bad input changed the history: %d events, then %d", before, after)
	}

	// R12: a project admin of the source's project may start it.
	r := startMigration(t, s, st.ProjectAdminToken, src)
	if r.Status != 202 {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	body := r.JSON(t)
	id := body["id"].(string)
	for _, k := range []string{"id", "state", "stage", "source_cluster_id", "target", "progress", "lag_seconds", "failure_reason", "created_at", "updated_at"} {
		if _, ok := body[k]; !ok {
			t.Errorf("migration JSON lacks %s", k)
		}
	}
	if r := startMigration(t, s, st.OrgAdminToken, src); r.Status != 409 || r.ErrorCode(t) != "source_busy" {
		t.Fatalf("second migration of a busy source: %d %s", r.Status, r.Body)
	}
	s.WaitState(t, id, "syncing", 10*time.Second)
	waitLagSampled(t, s, id)

	if r := s.Do(t, "GET", "/v1/migrations", st.ViewerToken, nil); len(r.JSON(t)["migrations"].([]any)) != 1 {
		t.Fatalf("list: %s", r.Body)
	}
	if r := s.Do(t, "GET", "/v1/migrations", st.OtherOrgToken, nil); len(r.JSON(t)["migrations"].([]any)) != 0 {
		t.Fatalf("other organization lists acme's migrations: %s", r.Body)
	}
	// Another organization's migration is answered as one never issued.
	for _, path := range []string{"/v1/migrations/" + id, "/v1/migrations/" + id + "/events"} {
		if r := s.Do(t, "GET", path, st.OtherOrgToken, nil); r.Status != 404 || strings.Contains(string(r.Body), "acme") {
			t.Fatalf("other organization GET %s: %d %s", path, r.Status, r.Body)
		}
	}
	// A command on it is answered as GET is, naming what was not found.
	for _, cmd := range []string{"/stop-sync", "/cancel"} {
		if r := s.Do(t, "POST", "/v1/migrations/"+id+cmd, st.OtherOrgToken, map[string]any{"confirm_writes_stopped": true}); r.Status != 404 ||
			!strings.Contains(string(r.Body), `"message":"no migration `+id+`"`) {
			t.Fatalf("other organization %s: %d %s", cmd, r.Status, r.Body)
		}
	}
	// A client that escapes what it need not reaches the same migration.
	escaped := strings.ReplaceAll(id, "-", "%2D")
	if r := s.Do(t, "GET", "/v1/migrations/"+escaped, st.ViewerToken, nil); r.Status != 200 || r.JSON(t)["id"] != id {
		t.Fatalf("GET %s: %d %s", escaped, r.Status, r.Body)
	}
	if r := s.Do(t, "GET", "/v1/migrations/m%2Dnope", st.AdminToken, nil); r.Status != 404 || !strings.Contains(string(r.Body), `"no migration m-nope"`) {
		t.Fatalf("GET m%%2Dnope: %d %s", r.Status, r.Body)
	}
	for _, missing := range []string{"m-nope", "a.b", "%2A"} {
		if r := s.Do(t, "GET", "/v1/migrations/"+missing, st.AdminToken, nil); r.Status != 404 {
			t.Fatalf("GET %s: %d", missing, r.Status)
		}
		if r := s.Do(t, "POST", "/v1/migrations/"+missing+"/cancel", st.AdminToken, nil); r.Status != 404 {
			t.Fatalf("cancel %s: %d %s", missing, r.Status, r.Body)
		}
	}

	// The audit history, paged.
	var seen []any
	after := "0"
	for page := 0; page < 100; page++ {
		r := s.Do(t, "GET", "/v1/migrations/"+id+"/events?limit=2&after="+after, st.ViewerToken, nil)
		if r.Status != 200 {
			t.Fatalf("events: %d %s", r.Status, r.Body)
		}
		b := r.JSON(t)
		seen = append(seen, b["events"].([]any)...)
		after = fmt.Sprint(b["next_after"])
		if b["more"] != true {
			break
		}
	}
	if len(seen) < 6 || seen[0].(map[string]any)["type"] != domain.TypeMigrationRequested {
		t.Fatalf("history: %v", seen)
	}
	// Steps only: no periodic lag sample.
	r = s.Do(t, "GET", "/v1/migrations/"+id+"/events?limit=1000&steps=true", st.ViewerToken, nil)
	if r.Status != 200 {
		t.Fatalf("steps: %d %s", r.Status, r.Body)
	}
	for _, e := range r.JSON(t)["events"].([]any) {
		ev := e.(map[string]any)
		if ev["type"] == domain.TypeLagSampled && ev["data"].(map[string]any)["crossed"] == nil {
			t.Fatalf("steps list a periodic sample: %v", ev)
		}
	}
	for q, field := range map[string]string{
		"after=x": "after", "after=": "after", "after=-1": "after", "after=9223372036854775808": "after", "after=1&after=2": "after",
		"limit=0": "limit", "limit=5000": "limit", "limit=": "limit",
		"steps=maybe": "steps", "steps=": "steps", "steps=true&steps=false": "steps",
		"limt=5": "limt", "after=1&page=2": "page",
	} {
		if r := s.Do(t, "GET", "/v1/migrations/"+id+"/events?"+q, st.AdminToken, nil); r.Status != 400 || r.ErrorField(t) != field {
			t.Errorf("events?%s: %d %s, want 400 naming %s", q, r.Status, r.Body, field)
		}
	}

	// Stop-sync: confirmation (R9), lag threshold, R12.
	stop := "/v1/migrations/" + id + "/stop-sync"
	for _, b := range []any{map[string]any{}, map[string]any{"confirm_writes_stopped": false}} {
		if r := s.Do(t, "POST", stop, st.OrgAdminToken, b); r.Status != 400 || r.ErrorField(t) != "confirm_writes_stopped" {
			t.Fatalf("stop without confirmation: %d %s", r.Status, r.Body)
		}
	}
	if r := s.Do(t, "POST", stop, st.OrgAdminToken, `{"confirm_writes_stopped":"yes"}`); r.Status != 400 {
		t.Fatalf("stop with a string: %d", r.Status)
	}
	if r := s.Do(t, "POST", stop, st.ViewerToken, map[string]any{"confirm_writes_stopped": true}); r.Status != 403 {
		t.Fatalf("viewer stop: %d", r.Status)
	}
	if r := s.Do(t, "POST", stop, st.OtherOrgToken, map[string]any{"confirm_writes_stopped": true}); r.Status != 404 {
		t.Fatalf("other organization stop: %d", r.Status)
	}
	r = s.Do(t, "POST", stop, st.OrgAdminToken, map[string]any{"confirm_writes_stopped": true})
	if r.Status != 409 || r.ErrorCode(t) != "lag_above_threshold" || !strings.Contains(string(r.Body), "1000.0s") {
		t.Fatalf("stop above the threshold: %d %s", r.Status, r.Body)
	}
	// Two concurrent forced stops: one wins, the other is a conflict.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = s.Do(t, "POST", stop, st.OrgAdminToken, map[string]any{"confirm_writes_stopped": true, "force": true}).Status
		}()
	}
	wg.Wait()
	if !(codes[0] == 202 && codes[1] == 409) && !(codes[0] == 409 && codes[1] == 202) {
		t.Fatalf("concurrent stop-sync: %v, want one 202 and one 409", codes)
	}
	done := s.WaitState(t, id, "switched_over", 10*time.Second)
	if done["target"].(map[string]any)["connection"] == nil {
		t.Fatalf("no connection details after the switch: %v", done["target"])
	}
	waitClusterStatus(t, s, src, "Migrated")
	// A terminal migration accepts nothing.
	if r := s.Do(t, "POST", "/v1/migrations/"+id+"/cancel", st.OrgAdminToken, nil); r.Status != 409 || r.ErrorCode(t) != "migration_ended" {
		t.Fatalf("cancel after the switch: %d %s", r.Status, r.Body)
	}
}

func waitLagSampled(t *testing.T, s *st.Server, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r := s.Do(t, "GET", "/v1/migrations/"+id, st.AdminToken, nil); r.JSON(t)["lag_seconds"] != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no lag sample")
}

// copyingMigration starts a simulated migration that stays in the copy.
func copyingMigration(t *testing.T) (s *st.Server, src, id string) {
	cfg := st.Config(t.TempDir())
	cfg.Simulated.RangeDelay = time.Second // stay in the copy
	s = st.Start(t, cfg)
	src = registerCluster(t, s, "prod")
	r := startMigration(t, s, st.OrgAdminToken, src)
	if r.Status != 202 {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	id = r.JSON(t)["id"].(string)
	s.WaitState(t, id, "copying", 10*time.Second)
	return s, src, id
}

func TestCancelIsIdempotentAndReleases(t *testing.T) {
	s, src, id := copyingMigration(t)
	if r := s.Do(t, "POST", "/v1/migrations/"+id+"/cancel", st.ViewerToken, nil); r.Status != 403 {
		t.Fatalf("viewer cancel: %d", r.Status)
	}
	for i := 0; i < 2; i++ {
		r := s.Do(t, "POST", "/v1/migrations/"+id+"/cancel", st.OrgAdminToken, nil)
		if r.Status != 202 || r.JSON(t)["state"] != "cancelled" || r.JSON(t)["cancelled_by"] != "olga" {
			t.Fatalf("cancel #%d: %d %s", i+1, r.Status, r.Body)
		}
	}
	waitClusterStatus(t, s, src, "Running")
	if r := s.Do(t, "GET", "/v1/clusters/t-"+id, st.AdminToken, nil); r.Status != 404 {
		t.Fatalf("released target still registered: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "POST", "/v1/migrations/"+id+"/stop-sync", st.OrgAdminToken, map[string]any{"confirm_writes_stopped": true}); r.Status != 409 {
		t.Fatalf("stop-sync of a cancelled migration: %d", r.Status)
	}
}

func TestMetricsShowCopyProgressOfRunningMigrations(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	id := startMigration(t, s, st.OrgAdminToken, registerCluster(t, s, "prod")).JSON(t)["id"].(string)
	s.WaitState(t, id, "syncing", 10*time.Second)
	body := string(s.Do(t, "GET", "/metrics", st.MetricsToken, nil).Body)
	// The simulated plan: 2 collections of 4 ranges of 1000 rows.
	for _, want := range []string{`zdm_copy_rows_copied{migration="` + id + `"} 8000`, `zdm_copy_rows_total{migration="` + id + `"} 8000`,
		`zdm_migrations{state="syncing"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if r := s.Do(t, "POST", "/v1/migrations/"+id+"/cancel", st.OrgAdminToken, nil); r.Status != 202 {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	s.WaitState(t, id, "cancelled", 10*time.Second)
	if body := string(s.Do(t, "GET", "/metrics", st.MetricsToken, nil).Body); strings.Contains(body, `zdm_copy_rows_total{migration="`+id) {
		t.Error("an ended migration still has copy progress series")
	}
}

// A migration started through one instance is found at once through
// another sharing its NATS, though that one's view follows the store a
// moment later: never 404 for a migration that exists.
func TestAMigrationStartedThroughOneInstanceIsFoundThroughAnother(t *testing.T) {
	ext, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()
	t.Setenv("ZDM_SECRET_KEY", base64.StdEncoding.EncodeToString(make([]byte, 32)))
	servers := make([]*st.Server, 2)
	for i := range servers {
		cfg := st.Config(t.TempDir())
		cfg.NATSURL, cfg.Instance = ext.ClientURL(), fmt.Sprintf("zdmd-%d", i+1)
		servers[i] = st.Start(t, cfg)
	}
	a, b := servers[0], servers[1]
	for n := range 5 {
		src := registerCluster(t, a, fmt.Sprintf("prod%d", n))
		r := startMigration(t, a, st.OrgAdminToken, src)
		if r.Status != 202 {
			t.Fatalf("start: %d %s", r.Status, r.Body)
		}
		id := r.JSON(t)["id"].(string)
		if r := b.Do(t, "GET", "/v1/migrations/"+id, st.OrgAdminToken, nil); r.Status != 200 {
			t.Fatalf("the other instance answered %d for a migration just started: %s", r.Status, r.Body)
		}
		if r := b.Do(t, "POST", "/v1/migrations/"+id+"/cancel", st.OrgAdminToken, nil); r.Status != 202 {
			t.Fatalf("cancel through the other instance: %d %s", r.Status, r.Body)
		}
	}
	if r := b.Do(t, "GET", "/v1/migrations/m-0123456789abcdef", st.OrgAdminToken, nil); r.Status != 404 {
		t.Fatalf("a migration that does not exist: %d", r.Status)
	}
}

// Lists read as operators read them: the latest at the top.
func TestListsAreNewestFirst(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	var clusters, migrations []string
	for _, name := range []string{"first", "second", "third"} {
		id := registerCluster(t, s, name)
		clusters = append([]string{id}, clusters...)
		r := startMigration(t, s, st.OrgAdminToken, id)
		if r.Status != 202 {
			t.Fatalf("start: %d %s", r.Status, r.Body)
		}
		migrations = append([]string{r.JSON(t)["id"].(string)}, migrations...)
		time.Sleep(2 * time.Millisecond) // distinct creation times
	}
	ids := func(path, key string) []string {
		var out []string
		for _, v := range s.Do(t, "GET", path, st.AdminToken, nil).JSON(t)[key].([]any) {
			out = append(out, v.(map[string]any)["id"].(string))
		}
		return out
	}
	// Targets the migrations made are listed too.
	got := slices.DeleteFunc(ids("/v1/clusters", "clusters"), func(id string) bool { return !slices.Contains(clusters, id) })
	if !slices.Equal(got, clusters) {
		t.Errorf("clusters listed %v, want newest first %v", got, clusters)
	}
	if got := ids("/v1/migrations", "migrations"); !slices.Equal(got, migrations) {
		t.Errorf("migrations listed %v, want newest first %v", got, migrations)
	}
}

// One Milvus registered twice is one source: while a migration holds one
// registration, the other is refused naming both, and after it ends the
// other may start.
func TestAMilvusRegisteredTwiceIsMigratedOnceAtATime(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	var ids []string
	for _, name := range []string{"one", "again"} {
		body := cluster(name, "search")
		body["endpoint"] = "Milvus.Example:19530"
		if name == "again" {
			body["endpoint"] = "milvus.example:19530" // a host name's case is not its own
		}
		r := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, body)
		if r.Status != 201 {
			t.Fatalf("register %s: %d %s", name, r.Status, r.Body)
		}
		ids = append(ids, r.JSON(t)["id"].(string))
	}
	r := startMigration(t, s, st.OrgAdminToken, ids[0])
	if r.Status != 202 {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	mid := r.JSON(t)["id"].(string)
	r = startMigration(t, s, st.OrgAdminToken, ids[1])
	if r.Status != 409 || r.ErrorCode(t) != "source_busy" || !strings.Contains(string(r.Body), ids[0]) || !strings.Contains(string(r.Body), mid) {
		t.Fatalf("the same Milvus again: %d %s, want 409 source_busy naming %s and %s", r.Status, r.Body, ids[0], mid)
	}
	if n := len(s.Do(t, "GET", "/v1/migrations", st.OrgAdminToken, nil).JSON(t)["migrations"].([]any)); n != 1 {
		t.Fatalf("the refusal left %d migrations, want the first alone", n)
	}
	s.Do(t, "POST", "/v1/migrations/"+mid+"/cancel", st.OrgAdminToken, nil)
	s.WaitState(t, mid, "cancelled", 10*time.Second)
	waitClusterStatus(t, s, ids[0], "Running")
	if r := startMigration(t, s, st.OrgAdminToken, ids[1]); r.Status != 202 {
		t.Fatalf("after the first migration ended: %d %s", r.Status, r.Body)
	}
}

// Starts sent at the same moment for one source: one migration runs. A
// request that lost the lock after it was recorded is answered 409 and
// told which failed migration it left; no migration is left that no
// answer names.
func TestStartsAtTheSameMomentLeaveNoMigrationUnnamed(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	src := registerCluster(t, s, "raced")
	const n = 6
	answers := make([]st.Response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); answers[i] = postMigration(t, s, st.OrgAdminToken, src) }()
	}
	wg.Wait()
	named := map[string]bool{}
	started := 0
	for _, r := range answers {
		switch {
		case r.Status == 202:
			started++
			named[r.JSON(t)["id"].(string)] = true
		case r.Status == 409 && r.ErrorCode(t) == "source_busy":
			if m := regexp.MustCompile(`stays as migration (m-[0-9a-f]+), failed`).FindStringSubmatch(string(r.Body)); m != nil {
				named[m[1]] = true
			}
		default:
			t.Fatalf("a start: %d %s", r.Status, r.Body)
		}
	}
	if started != 1 {
		t.Fatalf("%d starts were accepted, want 1", started)
	}
	for _, v := range s.Do(t, "GET", "/v1/migrations", st.OrgAdminToken, nil).JSON(t)["migrations"].([]any) {
		if id := v.(map[string]any)["id"].(string); !named[id] {
			t.Errorf("migration %s (%v) is named by no answer", id, v.(map[string]any)["state"])
		}
	}
}
