package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	st "github.com/zdm-io/zdm/service/servicetest"
)

func TestAKeyOfOneOrganizationNeverAnswersAnother(t *testing.T) {
	dir := t.TempDir()
	s := st.Start(t, st.Config(dir))
	acme := startMigration(t, s, st.OrgAdminToken, registerCluster(t, s, "acme-src")).JSON(t)["id"].(string)
	r := s.Do(t, "POST", "/v1/clusters", st.OtherOrgToken, map[string]any{"name": "globex-src", "organization": "globex", "project": "web", "endpoint": "127.0.0.1:19531"})
	if r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	g := s.Do(t, "POST", "/v1/migrations", st.OtherOrgToken, map[string]any{"source_cluster_id": r.JSON(t)["id"],
		"target": map[string]any{"name": "globex-new", "project": "web", "provisioner": "simulated"}})
	if g.Status != http.StatusAccepted {
		t.Fatalf("start: %d %s", g.Status, g.Body)
	}
	globex := g.JSON(t)["id"].(string)

	if r := s.DoKeyed(t, "POST", "/v1/migrations/"+acme+"/cancel", st.OrgAdminToken, "k1", nil); r.Status != http.StatusAccepted {
		t.Fatalf("acme cancel: %d %s", r.Status, r.Body)
	}
	r = s.DoKeyed(t, "POST", "/v1/migrations/"+globex+"/cancel", st.OtherOrgToken, "k1", nil)
	if r.Status != http.StatusAccepted || r.JSON(t)["id"] != globex {
		t.Fatalf("globex cancel with the same key: %d %s", r.Status, r.Body)
	}
	s.WaitState(t, globex, "cancelled", 5*time.Second)
	// Stored, so it survives a restart.
	s.Stop()
	s = st.Start(t, st.Config(dir))
	for _, id := range []string{acme, globex} {
		s.WaitState(t, id, "cancelled", 5*time.Second)
	}
}

func TestARetriedCommandGetsItsFirstAnswer(t *testing.T) {
	dir := t.TempDir()
	s := st.Start(t, st.Config(dir))
	body := cluster("retried", "search")
	first := s.DoKeyed(t, "POST", "/v1/clusters", st.OrgAdminToken, "reg-1", body)
	if first.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", first.Status, first.Body)
	}
	id := first.JSON(t)["id"].(string)
	again := s.DoKeyed(t, "POST", "/v1/clusters", st.OrgAdminToken, "reg-1", body)
	if again.Status != first.Status || !bytes.Equal(again.Body, first.Body) {
		t.Fatalf("retry: %d %s, first %s", again.Status, again.Body, first.Body)
	}
	if r := s.Do(t, "GET", "/v1/clusters/"+id, st.OrgAdminToken, nil); r.Status != http.StatusOK {
		t.Fatalf("the cluster of the first answer: %d %s", r.Status, r.Body)
	}
	// The same body laid out otherwise (another client library's retry:
	// keys in another order, spaces, a line break) is the same request.
	var laid strings.Builder
	laid.WriteString("{\n")
	for _, k := range slices.Backward(slices.Sorted(maps.Keys(body))) {
		v, _ := json.Marshal(body[k])
		fmt.Fprintf(&laid, "  %q : %s,\n", k, v)
	}
	relaid := strings.TrimSuffix(laid.String(), ",\n") + "\n}"
	if r := s.DoKeyed(t, "POST", "/v1/clusters", st.OrgAdminToken, "reg-1", relaid); r.Status != first.Status || !bytes.Equal(r.Body, first.Body) {
		t.Fatalf("the same body laid out otherwise:\n%s\n%d %s", relaid, r.Status, r.Body)
	}
	// The same key with another body is refused and changes nothing.
	before := historySize(t, s)
	other := cluster("retried", "search")
	other["password"] = "another-Secret"
	if r := s.DoKeyed(t, "POST", "/v1/clusters", st.OrgAdminToken, "reg-1", other); r.Status != http.StatusUnprocessableEntity ||
		r.ErrorCode(t) != "idempotency_key_reused" || r.ErrorField(t) != "Idempotency-Key" {
		t.Fatalf("another body: %d %s", r.Status, r.Body)
	}
	if historySize(t, s) != before {
		t.Fatal("a refused retry stored events")
	}

	// Start and stop-sync retried concurrently, then after a restart.
	start := map[string]any{"source_cluster_id": id, "target": map[string]any{"name": "new", "project": "search", "provisioner": "simulated"}}
	answers := make([]st.Response, 4)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = s.DoKeyed(t, "POST", "/v1/migrations", st.OrgAdminToken, "start-1", start)
		}()
	}
	wg.Wait()
	for _, a := range answers {
		if a.Status != http.StatusAccepted || !bytes.Equal(a.Body, answers[0].Body) {
			t.Fatalf("concurrent starts: %d %s and %d %s", a.Status, a.Body, answers[0].Status, answers[0].Body)
		}
	}
	mid := answers[0].JSON(t)["id"].(string)
	s.WaitState(t, mid, "syncing", 10*time.Second)
	stop := map[string]any{"confirm_writes_stopped": true, "force": true}
	stopped := s.DoKeyed(t, "POST", "/v1/migrations/"+mid+"/stop-sync", st.OrgAdminToken, "stop-1", stop)
	if stopped.Status != http.StatusAccepted {
		t.Fatalf("stop-sync: %d %s", stopped.Status, stopped.Body)
	}
	s.WaitState(t, mid, "switched_over", 10*time.Second)

	s.Stop()
	s = st.Start(t, st.Config(dir))
	if r := s.DoKeyed(t, "POST", "/v1/migrations", st.OrgAdminToken, "start-1", start); r.Status != http.StatusAccepted || !bytes.Equal(r.Body, answers[0].Body) {
		t.Fatalf("start retried after a restart: %d %s", r.Status, r.Body)
	}
	if r := s.DoKeyed(t, "POST", "/v1/migrations/"+mid+"/stop-sync", st.OrgAdminToken, "stop-1", stop); r.Status != http.StatusAccepted || !bytes.Equal(r.Body, stopped.Body) {
		t.Fatalf("stop-sync retried after a restart: %d %s", r.Status, r.Body)
	}
	// Another principal's key of the same text is its own command.
	if r := s.DoKeyed(t, "POST", "/v1/migrations", st.ProjectAdminToken, "start-1", start); r.Status == http.StatusAccepted && bytes.Equal(r.Body, answers[0].Body) {
		t.Fatalf("another principal got the first answer: %s", r.Body)
	}
}

// A key sent empty, twice or too long is refused on every keyed route,
// before anything is done.
func TestAKeyNoClientCanHaveMeantIsRefused(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	id := registerCluster(t, s, "keyed")
	routes := []struct{ method, path string }{
		{"POST", "/v1/clusters"}, {"PATCH", "/v1/clusters/" + id}, {"DELETE", "/v1/clusters/" + id},
		{"POST", "/v1/migrations"}, {"PATCH", "/v1/migrations/m-none"},
		{"POST", "/v1/migrations/m-none/stop-sync"}, {"POST", "/v1/migrations/m-none/cancel"},
	}
	keys := map[string][]string{
		"empty":    {""},
		"twice":    {"k-1", "k-2"},
		"too long": {strings.Repeat("k", 256)},
	}
	before := historySize(t, s)
	for _, r := range routes {
		for name, values := range keys {
			got := s.DoHeaders(t, r.method, r.path, st.OrgAdminToken, http.Header{"Idempotency-Key": values}, cluster("keyed-2", "search"))
			if got.Status != http.StatusBadRequest || got.ErrorCode(t) != "invalid_header" || got.ErrorField(t) != "Idempotency-Key" {
				t.Errorf("%s %s, a key %s: %d %s", r.method, r.path, name, got.Status, got.Body)
			}
		}
	}
	if historySize(t, s) != before {
		t.Fatal("a refused key stored events")
	}
	// The longest key is taken.
	if r := s.DoKeyed(t, "POST", "/v1/clusters", st.OrgAdminToken, strings.Repeat("k", 255), cluster("keyed-2", "search")); r.Status != http.StatusCreated {
		t.Fatalf("a key of 255 characters: %d %s", r.Status, r.Body)
	}
}

// A registration retried once its cluster was deleted is not answered
// 201 again, naming a cluster that is gone: it is 409 and registers
// nothing; a new key registers the cluster anew.
func TestARegistrationRetriedAfterItsClusterWasDeletedIsRefused(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	body := cluster("short-lived", "search")
	first := s.DoKeyed(t, "POST", "/v1/clusters", st.OrgAdminToken, "reg-gone", body)
	if first.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", first.Status, first.Body)
	}
	id := first.JSON(t)["id"].(string)
	if r := s.Do(t, "DELETE", "/v1/clusters/"+id, st.OrgAdminToken, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	before := historySize(t, s)
	r := s.DoKeyed(t, "POST", "/v1/clusters", st.OrgAdminToken, "reg-gone", body)
	if r.Status != http.StatusConflict || r.ErrorCode(t) != "cluster_deleted" || r.ErrorField(t) != "Idempotency-Key" || !strings.Contains(string(r.Body), id) {
		t.Fatalf("the retry after the delete: %d %s, want 409 cluster_deleted naming %s", r.Status, r.Body, id)
	}
	if historySize(t, s) != before {
		t.Fatal("the refused retry stored events")
	}
	again := s.DoKeyed(t, "POST", "/v1/clusters", st.OrgAdminToken, "reg-anew", body)
	if again.Status != http.StatusCreated || again.JSON(t)["id"] == id {
		t.Fatalf("a new key: %d %s", again.Status, again.Body)
	}
}
