package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	st "github.com/zdm-io/zdm/service/servicetest"
)

// Every command is refused by who asks before what it carries is read: a
// caller who may not act gets 401, 403 or 404 whatever its body, never the
// 400 a driver would get for the same body, and nothing changes.
func TestACommandIsRefusedByRoleBeforeItsBodyIsRead(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	// A cluster and a migration of project "ads": its project's admins
	// and the organization's drive them, pete (admin of "search") may not.
	r := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, cluster("ads-prod", "ads"))
	if r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	cid := r.JSON(t)["id"].(string)
	r = s.Do(t, "POST", "/v1/migrations", st.OrgAdminToken, map[string]any{"source_cluster_id": cid,
		"target": map[string]any{"name": "ads-next", "project": "ads", "provisioner": "simulated"}})
	if r.Status != http.StatusAccepted {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	mid := r.JSON(t)["id"].(string)
	spare := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, cluster("ads-spare", "ads")).JSON(t)["id"].(string)
	// A syncing migration records nothing by itself but its lag, which
	// historySize leaves out.
	s.WaitState(t, mid, "syncing", 10*time.Second)

	// A body each command refuses from a caller who may drive it.
	bad := map[string]any{
		"POST /v1/clusters":                 map[string]any{"name": ""},
		"DELETE /v1/clusters/:id":           nil,
		"PATCH /v1/clusters/:id":            map[string]any{"endpoint": "no port"},
		"POST /v1/migrations":               map[string]any{"source_cluster_id": "c-none"},
		"PATCH /v1/migrations/:id":          map[string]any{"options": map[string]any{"copy_rate_limit": -1}},
		"POST /v1/migrations/:id/stop-sync": map[string]any{"confirm_writes_stopped": false},
		"POST /v1/migrations/:id/cancel":    nil,
	}
	onCollection := func(path string) bool { return !strings.Contains(path, ":id") }
	before := historySize(t, s)
	for _, rt := range s.Routes() {
		method, path, _ := strings.Cut(rt, " ")
		if method == "GET" || !strings.HasPrefix(path, "/v1/") {
			continue
		}
		body, ok := bad[rt]
		if !ok {
			t.Errorf("%s: a command this test does not know; add a body it refuses", rt)
			continue
		}
		url := strings.Replace(path, ":id", mid, 1)
		if strings.HasPrefix(path, "/v1/clusters/") {
			url = strings.Replace(path, ":id", spare, 1)
		}
		want := map[string]int{"": 401, "bogus": 401, st.ViewerToken: 403, st.MetricsToken: 403}
		if !onCollection(path) {
			// Another organization's aggregate is one that does not exist;
			// a project admin of another project sees it but may not act.
			want[st.OtherOrgToken], want[st.ProjectAdminToken] = 404, 403
		}
		for tok, code := range want {
			r := s.Do(t, method, url, tok, body)
			if r.Status != code {
				t.Errorf("%s as %q: %d %s, want %d", rt, tok, r.Status, r.Body, code)
			}
			if e, _ := r.JSON(t)["error"].(map[string]any); e == nil || e["message"] == "" {
				t.Errorf("%s as %q: no error body: %s", rt, tok, r.Body)
			}
		}
		// The same body from a driver is refused for what it carries.
		if body != nil {
			if r := s.Do(t, method, url, st.OrgAdminToken, body); r.Status != 400 {
				t.Errorf("%s with a bad body as the organization's admin: %d %s, want 400", rt, r.Status, r.Body)
			}
		}
	}
	if after := historySize(t, s); after != before {
		t.Errorf("refused commands changed the history: %d events, then %d", before, after)
	}
}

// A scrape token reads /metrics and whose token it is, nothing else: every
// other read is 403 naming why, not an empty list that looks like an
// organization with nothing in it.
func TestAScrapeTokenReadsMetricsOnly(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	cid := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, cluster("scraped", "ads")).JSON(t)["id"].(string)
	mid := s.Do(t, "POST", "/v1/migrations", st.OrgAdminToken, map[string]any{"source_cluster_id": cid,
		"target": map[string]any{"name": "scraped-next", "project": "ads", "provisioner": "simulated"}}).JSON(t)["id"].(string)
	for _, rt := range s.Routes() {
		method, path, _ := strings.Cut(rt, " ")
		if method != "GET" || !strings.HasPrefix(path, "/v1/") || path == "/v1/openapi.yaml" {
			continue
		}
		url := strings.Replace(path, ":id", mid, 1)
		if strings.HasPrefix(path, "/v1/clusters/") {
			url = strings.Replace(path, ":id", cid, 1)
		}
		want := 403
		if path == "/v1/whoami" {
			want = 200
		}
		r := s.Do(t, method, url, st.MetricsToken, nil)
		if r.Status != want {
			t.Errorf("%s as a scrape token: %d %s, want %d", rt, r.Status, r.Body, want)
		}
		if want == 403 && !strings.Contains(string(r.Body), "/metrics only") {
			t.Errorf("%s as a scrape token: %s, want a refusal that says it reads /metrics only", rt, r.Body)
		}
		// The organization's viewer reads each of them.
		if r := s.Do(t, method, url, st.ViewerToken, nil); r.Status != 200 {
			t.Errorf("%s as the viewer: %d %s", rt, r.Status, r.Body)
		}
	}
	if r := s.Do(t, "GET", "/metrics", st.MetricsToken, nil); r.Status != 200 {
		t.Errorf("/metrics as a scrape token: %d %s", r.Status, r.Body)
	}
}
