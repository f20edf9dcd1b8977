package api_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	st "github.com/zdm-io/zdm/service/servicetest"
)

// The list of migrations filters by state and source, pages with limit
// and after without skipping or repeating one, and in its summary view
// leaves out what grows with a migration's collections and history. Bad
// parameters are 400 naming them; another organization's migrations are
// neither listed nor a cursor.
func TestTheMigrationListFiltersPagesAndSummarizes(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	list := func(token, params string) map[string]any {
		t.Helper()
		r := s.Do(t, "GET", "/v1/migrations?"+params, token, nil)
		if r.Status != 200 {
			t.Fatalf("GET /v1/migrations?%s: %d %s", params, r.Status, r.Body)
		}
		return r.JSON(t)
	}
	ids := func(body map[string]any) []string {
		var out []string
		for _, m := range body["migrations"].([]any) {
			out = append(out, m.(map[string]any)["id"].(string))
		}
		return out
	}

	// Four migrations of two sources: the older three cancelled.
	a, b := registerCluster(t, s, "list-a"), registerCluster(t, s, "list-b")
	var started []string // oldest first
	for i, src := range []string{a, b, a, b} {
		r := startMigration(t, s, st.OrgAdminToken, src)
		if r.Status != 202 {
			t.Fatalf("start %d: %d %s", i, r.Status, r.Body)
		}
		id := r.JSON(t)["id"].(string)
		started = append(started, id)
		if i < 3 {
			s.Do(t, "POST", "/v1/migrations/"+id+"/cancel", st.OrgAdminToken, nil)
			s.WaitState(t, id, "cancelled", 10*time.Second)
			waitClusterStatus(t, s, src, "Running")
		}
		time.Sleep(5 * time.Millisecond) // a start time of its own
	}
	other := s.Do(t, "POST", "/v1/clusters", st.OtherOrgToken, map[string]any{"name": "globex-src", "organization": "globex", "project": "web", "endpoint": "globex.milvus.test:19530"})
	r := s.Do(t, "POST", "/v1/migrations", st.OtherOrgToken, map[string]any{"source_cluster_id": other.JSON(t)["id"],
		"target": map[string]any{"name": "globex-new", "project": "web", "provisioner": "simulated"}})
	if r.Status != 202 {
		t.Fatalf("globex's start: %d %s", r.Status, r.Body)
	}
	globex := r.JSON(t)["id"].(string)

	newest := []string{started[3], started[2], started[1], started[0]}
	if got := ids(list(st.OrgAdminToken, "")); strings.Join(got, ",") != strings.Join(newest, ",") {
		t.Fatalf("the whole list: %v, want %v (newest first, no other organization's)", got, newest)
	}
	for params, want := range map[string][]string{
		"state=running":                           {started[3]},
		"state=ended":                             {started[2], started[1], started[0]},
		"state=cancelled,running":                 newest,
		"source_cluster_id=" + a:                  {started[2], started[0]},
		"source_cluster_id=" + b + "&state=ended": {started[1]},
		"state=switched_over":                     nil,
	} {
		if got := ids(list(st.OrgAdminToken, params)); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("?%s: %v, want %v", params, got, want)
		}
	}

	// Pages of three, then of one: every migration once, in order.
	for _, limit := range []string{"3", "1"} {
		var got []string
		after := ""
		for page := 0; ; page++ {
			params := "limit=" + limit
			if after != "" {
				params += "&after=" + url.QueryEscape(after)
			}
			body := list(st.OrgAdminToken, params)
			got = append(got, ids(body)...)
			if body["more"] != true {
				if _, has := body["next_after"]; has {
					t.Errorf("the last page has next_after: %v", body)
				}
				break
			}
			after = body["next_after"].(string)
			if page > 5 {
				t.Fatal("the pages never end")
			}
		}
		if strings.Join(got, ",") != strings.Join(newest, ",") {
			t.Errorf("pages of %s: %v, want %v", limit, got, newest)
		}
	}

	full := list(st.OrgAdminToken, "state=running")["migrations"].([]any)[0].(map[string]any)
	sum := list(st.OrgAdminToken, "state=running&view=summary")["migrations"].([]any)[0].(map[string]any)
	for _, k := range []string{"lag_history", "verification", "preflight", "notifications", "notes"} {
		if _, has := sum[k]; has {
			t.Errorf("the summary has %s", k)
		}
	}
	if _, has := full["lag_history"]; !has {
		t.Error("the full view lacks lag_history")
	}
	if _, has := sum["progress"].(map[string]any)["collections"]; has {
		t.Error("the summary has progress.collections")
	}
	for _, k := range []string{"id", "state", "stage", "source", "target", "options", "lag_seconds", "created_at", "updated_at", "failure_reason"} {
		if _, has := sum[k]; !has {
			t.Errorf("the summary lacks %s: %v", k, sum)
		}
	}
	if sum["progress"].(map[string]any)["rows_total"] != full["progress"].(map[string]any)["rows_total"] {
		t.Errorf("the summary's progress %v differs from the full view's %v", sum["progress"], full["progress"])
	}

	for params, field := range map[string]string{
		"state=running,paused":     "state",
		"state=":                   "state",
		"source_cluster_id=":       "source_cluster_id",
		"source_cluster_id":        "source_cluster_id",
		"view=brief":               "view",
		"limit=0":                  "limit",
		"limit=1001":               "limit",
		"limit=1&limit=2":          "limit",
		"after=m-0000000000000000": "after",
		"after=" + globex:          "after",
		"sort=created_at":          "sort",
	} {
		r := s.Do(t, "GET", "/v1/migrations?"+params, st.OrgAdminToken, nil)
		if r.Status != 400 || r.JSON(t)["error"].(map[string]any)["field"] != field {
			t.Errorf("?%s: %d %s, want 400 naming %s", params, r.Status, r.Body, field)
		}
	}
	if got := ids(list(st.OtherOrgToken, "")); len(got) != 1 || got[0] != globex {
		t.Errorf("globex lists %v, want its own migration alone", got)
	}
}

// A route that takes no query parameter refuses one, naming it, and a
// command given one is not carried out (nor its Idempotency-Key spent):
// "?dry_run=true" on a start must not start a migration.
func TestAQueryParameterARouteDoesNotTakeIsRefused(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	src := registerCluster(t, s, "noquery")
	before := historySize(t, s)
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/clusters"}, {"GET", "/v1/clusters/" + src}, {"GET", "/v1/whoami"}, {"GET", "/v1/provisioners"},
		{"POST", "/v1/migrations"}, {"PATCH", "/v1/clusters/" + src}, {"DELETE", "/v1/clusters/" + src},
	} {
		body := map[string]any{"spare": true}
		if c.path == "/v1/migrations" {
			body = map[string]any{"source_cluster_id": src, "target": map[string]any{"name": "new", "project": "search", "provisioner": "simulated"}}
		}
		r := s.DoKeyed(t, c.method, c.path+"?dry_run=true", st.OrgAdminToken, "k-"+c.method, body)
		if r.Status != 400 || r.ErrorCode(t) != "unknown_field" || r.ErrorField(t) != "dry_run" {
			t.Errorf("%s %s?dry_run=true: %d %s, want 400 unknown_field naming dry_run", c.method, c.path, r.Status, r.Body)
		}
	}
	// A query Echo cannot decode would lose its parameter in silence.
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/migrations?state=%zz"}, {"GET", "/v1/migrations?limit=1;after=x"}, {"POST", "/v1/migrations?%"},
		{"GET", "/v1/clusters?%zz"},
	} {
		body := map[string]any{"source_cluster_id": src, "target": map[string]any{"name": "new", "project": "search", "provisioner": "simulated"}}
		r := s.DoKeyed(t, c.method, c.path, st.OrgAdminToken, "k-"+c.method, body)
		if r.Status != 400 || r.ErrorCode(t) != "malformed_query" || r.ErrorField(t) != "query" {
			t.Errorf("%s %s: %d %s, want 400 malformed_query naming the query", c.method, c.path, r.Status, r.Body)
		}
	}
	if after := historySize(t, s); after != before {
		t.Fatalf("the refusals stored %d events", after-before)
	}
	// The key of a refused command is still free.
	r := s.DoKeyed(t, "POST", "/v1/migrations", st.OrgAdminToken, "k-POST", map[string]any{"source_cluster_id": src,
		"target": map[string]any{"name": "new", "project": "search", "provisioner": "simulated"}})
	if r.Status != 202 {
		t.Fatalf("the start without the parameter, same key: %d %s", r.Status, r.Body)
	}
}
