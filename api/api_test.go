package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/zdm-io/zdm/domain"
	st "github.com/zdm-io/zdm/service/servicetest"
)

func cluster(name, project string) map[string]any {
	return map[string]any{"name": name, "organization": "acme", "project": project, "endpoint": "127.0.0.1:19530",
		"username": "root", "password": "s3cret-Milvus"}
}

// registerCluster registers a cluster of its own Milvus (an endpoint
// of its name): two registrations of one Milvus cannot both migrate.
func registerCluster(t *testing.T, s *st.Server, name string) string {
	t.Helper()
	body := cluster(name, "search")
	body["endpoint"] = name + ".milvus.test:19530"
	r := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, body)
	if r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	return r.JSON(t)["id"].(string)
}

func startMigration(t testing.TB, s *st.Server, token, source string) st.Response {
	t.Helper()
	r := postMigration(t, s, token, source)
	if r.Status == 202 && r.JSON(t)["id"] == nil {
		t.Fatalf("202 without an id: %s", r.Body)
	}
	return r
}

func postMigration(t testing.TB, s *st.Server, token, source string) st.Response {
	t.Helper()
	return s.Do(t, "POST", "/v1/migrations", token, map[string]any{
		"source_cluster_id": source,
		"target":            map[string]any{"name": "new-" + source, "project": "search", "provisioner": "simulated"},
	})
}

// historySize counts every stored event, to prove bad input changed nothing.
func historySize(t *testing.T, s *st.Server) int {
	t.Helper()
	n := 0
	ctx := context.Background()
	for _, prefix := range []string{domain.MigrationSubject, domain.ClusterSubject} {
		subjects, err := s.Store().Subjects(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, subj := range subjects {
			recs, _, err := s.Store().Load(ctx, subj, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				// A running migration samples its lag by itself, and
				// records (and mails) its first lag under the threshold
				// whenever that sample comes.
				switch rec.Event.(type) {
				case domain.LagSampled, domain.LagThresholdReached, domain.NotificationSent:
				default:
					n++
				}
			}
		}
	}
	return n
}

// refusal is a request that must be refused with a status, an error code
// and (for 400s) the field it names.
type refusal struct {
	name, token string
	body        any
	status      int
	code, field string
}

func expectRefusals(t *testing.T, s *st.Server, path string, cases []refusal) {
	t.Helper()
	for _, tc := range cases {
		r := s.Do(t, "POST", path, tc.token, tc.body)
		if r.Status != tc.status || r.ErrorCode(t) != tc.code || r.ErrorField(t) != tc.field {
			t.Errorf("%s: got %d %s", tc.name, r.Status, r.Body)
		}
	}
}

func TestPublicEndpointsAndAuthentication(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	for _, path := range []string{"/healthz", "/readyz", "/v1/openapi.yaml"} {
		if r := s.Do(t, "GET", path, "", nil); r.Status != 200 {
			t.Errorf("GET %s: %d", path, r.Status)
		}
	}
	// Metrics name every tenant's migrations: a scrape token or an admin
	// reads them, no one else.
	for token, status := range map[string]int{"": 401, st.OrgAdminToken: 403, st.ViewerToken: 403, st.MetricsToken: 200, st.AdminToken: 200} {
		r := s.Do(t, "GET", "/metrics", token, nil)
		if r.Status != status || (status == 200) != strings.Contains(string(r.Body), "zdm_migrations") {
			t.Errorf("GET /metrics with %q: %d %.100s", token, r.Status, r.Body)
		}
	}
	// The scrape token reads nothing of any organization
	// (TestAScrapeTokenReadsMetricsOnly reads every route).
	registerCluster(t, s, "scraped")
	if r := s.Do(t, "GET", "/v1/clusters", st.MetricsToken, nil); r.Status != 403 || r.ErrorCode(t) != "forbidden" {
		t.Errorf("scrape token lists clusters: %d %s", r.Status, r.Body)
	}
	for _, token := range []string{"", "wrong"} {
		r := s.Do(t, "GET", "/v1/migrations", token, nil)
		if r.Status != 401 || r.ErrorCode(t) != "unauthorized" {
			t.Errorf("token %q: %d %s", token, r.Status, r.Body)
		}
	}
	if r := s.Do(t, "GET", "/v1/nothing-here", st.AdminToken, nil); r.Status != 404 || r.ErrorCode(t) != "not_found" {
		t.Errorf("unknown route: %d %s", r.Status, r.Body)
	}
	// Every /v1 route wants a token; a method a route does not take is
	// 405, with or without one.
	for _, rt := range s.Routes() {
		method, path, _ := strings.Cut(rt, " ")
		if !strings.HasPrefix(path, "/v1/") || path == "/v1/openapi.yaml" {
			continue
		}
		path = strings.ReplaceAll(path, ":id", "m-0000000000000000")
		if r := s.Do(t, method, path, "", nil); r.Status != 401 || r.ErrorCode(t) != "unauthorized" {
			t.Errorf("%s %s without a token: %d %s", method, path, r.Status, r.Body)
		}
	}
	for _, method := range []string{"TRACE", "PUT", "CONNECT"} {
		for _, path := range []string{"/v1/migrations", "/v1/migrations/m-1", "/v1/clusters/c-1", "/healthz"} {
			if r := s.Do(t, method, path, st.AdminToken, nil); r.Status != 405 || r.ErrorCode(t) != "method_not_allowed" {
				t.Errorf("%s %s: %d %s", method, path, r.Status, r.Body)
			}
		}
	}
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	r := s.Do(t, "GET", "/v1/openapi.yaml", "", nil)
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(r.Body, &doc); err != nil {
		t.Fatal(err)
	}
	routes := apiRoutes(s)
	for _, rt := range routes {
		if _, ok := doc.Paths[rt.path][strings.ToLower(rt.method)]; !ok {
			t.Errorf("OpenAPI lacks %s %s", rt.method, rt.path)
		}
	}
	if len(routes) < 17 {
		t.Fatalf("only %d routes checked: %v", len(routes), s.Routes())
	}
}

type route struct{ method, path string }

// apiRoutes is every route the server serves but the console's pages,
// with {id} where a path takes an identifier, as the OpenAPI document
// writes them.
func apiRoutes(s *st.Server) []route {
	var out []route
	for _, rt := range s.Routes() {
		method, path, _ := strings.Cut(rt, " ")
		if !strings.HasPrefix(path, "/v1/") && path != "/healthz" && path != "/readyz" && path != "/metrics" || strings.Contains(path, "*") {
			continue
		}
		out = append(out, route{method, strings.ReplaceAll(path, ":id", "{id}")})
	}
	return out
}

func TestClusterEndpoints(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	id := registerCluster(t, s, "prod")
	before := historySize(t, s)

	expectRefusals(t, s, "/v1/clusters", []refusal{
		{"malformed JSON", st.OrgAdminToken, `{"name":`, 400, "malformed_json", ""},
		{"not an object", st.OrgAdminToken, `[1,2]`, 400, "malformed_json", ""},
		{"missing name", st.OrgAdminToken, map[string]any{"organization": "acme", "project": "search", "endpoint": "h:1"}, 400, "invalid_field", "name"},
		{"wrong type", st.OrgAdminToken, `{"name":"x","organization":"acme","project":"search","endpoint":"h:1","spare":"yes"}`, 400, "invalid_field", "spare"},
		{"unknown field", st.OrgAdminToken, `{"name":"x","organization":"acme","project":"search","endpoint":"h:1","colour":1}`, 400, "unknown_field", "colour"},
		{"bad endpoint", st.OrgAdminToken, map[string]any{"name": "x", "organization": "acme", "project": "search", "endpoint": "nohost"}, 400, "invalid_field", "endpoint"},
		{"bad port", st.OrgAdminToken, map[string]any{"name": "x", "organization": "acme", "project": "search", "endpoint": "h:70000"}, 400, "invalid_field", "endpoint"},
		{"unknown project", st.OrgAdminToken, map[string]any{"name": "x", "organization": "acme", "project": "nope", "endpoint": "h:1"}, 400, "invalid_field", "project"},
		{"viewer", st.ViewerToken, cluster("x", "search"), 403, "forbidden", ""},
		{"other project", st.ProjectAdminToken, cluster("x", "ads"), 403, "forbidden", ""},
		{"other organization", st.OtherOrgToken, cluster("x", "search"), 403, "forbidden", ""},
	})
	if after := historySize(t, s); after != before {
		t.Fatalf("bad input changed the history: %d events, then %d", before, after)
	}

	got := s.Do(t, "GET", "/v1/clusters/"+id, st.ViewerToken, nil)
	if got.Status != 200 || got.JSON(t)["status"] != "Running" || got.JSON(t)["has_credentials"] != true {
		t.Fatalf("get: %d %s", got.Status, got.Body)
	}
	if strings.Contains(string(got.Body), "s3cret") {
		t.Fatal("the password appears in the API response")
	}
	recs, _, _ := s.Store().Load(context.Background(), domain.ClusterSubject+id, 0)
	for _, r := range recs {
		if strings.Contains(fmt.Sprintf("%+v", r.Event), "s3cret") || strings.Contains(fmt.Sprintf("%+v", r.Event), "root") {
			t.Fatalf("credentials in an event: %+v", r.Event)
		}
	}
	creds, err := s.Service().ClusterCredentials(context.Background(), id)
	if err != nil || creds.Password != "s3cret-Milvus" {
		t.Fatalf("credentials not kept: %v %v", creds, err)
	}
	if r := s.Do(t, "GET", "/v1/clusters", st.ViewerToken, nil); r.Status != 200 || len(r.JSON(t)["clusters"].([]any)) != 1 {
		t.Fatalf("list: %s", r.Body)
	}
	if r := s.Do(t, "GET", "/v1/clusters", st.OtherOrgToken, nil); len(r.JSON(t)["clusters"].([]any)) != 0 {
		t.Fatalf("another organization sees acme's clusters: %s", r.Body)
	}
	// Another organization's cluster is answered as one never issued.
	other, missing := s.Do(t, "GET", "/v1/clusters/"+id, st.OtherOrgToken, nil), s.Do(t, "GET", "/v1/clusters/c-0000000000000000", st.OtherOrgToken, nil)
	if other.Status != 404 || strings.Contains(string(other.Body), "acme") ||
		strings.Replace(string(other.Body), id, "ID", 1) != strings.Replace(string(missing.Body), "c-0000000000000000", "ID", 1) {
		t.Fatalf("other organization get: %d %s", other.Status, other.Body)
	}
	for _, req := range []struct{ method, path string }{{"DELETE", "/v1/clusters/" + id}, {"PATCH", "/v1/clusters/" + id}} {
		if r := s.Do(t, req.method, req.path, st.OtherOrgToken, map[string]any{"spare": true}); r.Status != 404 {
			t.Fatalf("other organization %s: %d %s", req.method, r.Status, r.Body)
		}
	}
	if r := s.Do(t, "GET", "/v1/clusters/c-missing", st.AdminToken, nil); r.Status != 404 {
		t.Fatalf("missing: %d", r.Status)
	}
	// PATCH changes what it names and leaves the rest; bad input is a 400.
	if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, map[string]any{"proxy_listen": "127.0.0.1:19599"}); r.Status != 200 ||
		r.JSON(t)["proxy_listen"] != "127.0.0.1:19599" || r.JSON(t)["endpoint"] != "prod.milvus.test:19530" {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
	for _, bad := range []struct {
		body  any
		field string
	}{
		{map[string]any{}, "body"}, {map[string]any{"proxy_listen": "nope"}, "proxy_listen"}, {map[string]any{"password": "x"}, "password"},
		{`{"spare":"yes"}`, "spare"},
		{map[string]any{"username": strings.Repeat("u", 257), "password": "p"}, "username"},
		{map[string]any{"username": "u", "password": strings.Repeat("p", 1025)}, "password"},
	} {
		if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, bad.body); r.Status != 400 || r.ErrorField(t) != bad.field {
			t.Errorf("patch %v: %d %s, want field %s", bad.body, r.Status, r.Body, bad.field)
		}
	}
	if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.ViewerToken, map[string]any{"spare": true}); r.Status != 403 {
		t.Fatalf("viewer patch: %d", r.Status)
	}
	if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, map[string]any{"proxy_listen": ""}); r.Status != 200 || r.JSON(t)["proxy_listen"] != nil {
		t.Fatalf("clearing the proxy: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "DELETE", "/v1/clusters/"+id, st.ViewerToken, nil); r.Status != 403 {
		t.Fatalf("viewer delete: %d", r.Status)
	}
	if r := s.Do(t, "DELETE", "/v1/clusters/c-missing", st.AdminToken, nil); r.Status != 404 {
		t.Fatalf("delete missing: %d", r.Status)
	}
	if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, map[string]any{"proxy_listen": "127.0.0.1:19598"}); r.Status != 200 {
		t.Fatalf("a proxy again: %d %s", r.Status, r.Body)
	}
	// R5: a locked source cannot be deleted.
	m := startMigration(t, s, st.OrgAdminToken, id)
	if m.Status != 202 {
		t.Fatalf("start: %d %s", m.Status, m.Body)
	}
	if r := s.Do(t, "DELETE", "/v1/clusters/"+id, st.OrgAdminToken, nil); r.Status != 409 || r.ErrorCode(t) != "cluster_locked" {
		t.Fatalf("delete of a locked cluster: %d %s", r.Status, r.Body)
	}
	// Its endpoint and TLS stay while the data plane is connected; the
	// endpoint it has may be given again.
	for field, v := range map[string]any{"endpoint": "127.0.0.1:19531", "tls": map[string]any{"mode": "none"}} {
		if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, map[string]any{field: v}); r.Status != 409 ||
			r.ErrorCode(t) != "cluster_locked" || r.ErrorField(t) != field {
			t.Errorf("%s of a locked cluster: %d %s", field, r.Status, r.Body)
		}
	}
	if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, map[string]any{"endpoint": "prod.milvus.test:19530"}); r.Status != 200 {
		t.Errorf("the same endpoint again: %d %s", r.Status, r.Body)
	}
	// Its proxy neither moves nor goes: the applications write through it.
	for _, v := range []string{"127.0.0.1:19597", ""} {
		if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, map[string]any{"proxy_listen": v}); r.Status != 409 ||
			r.ErrorCode(t) != "cluster_locked" || r.ErrorField(t) != "proxy_listen" || !strings.Contains(string(r.Body), "cut them off") {
			t.Errorf("proxy_listen %q of a locked cluster: %d %s", v, r.Status, r.Body)
		}
	}
	if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, map[string]any{"proxy_listen": "127.0.0.1:19598", "spare": false}); r.Status != 200 {
		t.Errorf("the same proxy_listen again: %d %s", r.Status, r.Body)
	}
	mid := m.JSON(t)["id"].(string)
	s.Do(t, "POST", "/v1/migrations/"+mid+"/cancel", st.OrgAdminToken, nil)
	s.WaitState(t, mid, "cancelled", 10*time.Second)
	waitClusterStatus(t, s, id, "Running")
	if r := s.Do(t, "DELETE", "/v1/clusters/"+id, st.OrgAdminToken, nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "GET", "/v1/clusters/"+id, st.AdminToken, nil); r.Status != 404 {
		t.Fatalf("deleted cluster still served: %d", r.Status)
	}
	if c, _ := s.Service().ClusterCredentials(context.Background(), id); !c.Empty() {
		t.Fatal("credentials of a deleted cluster were kept")
	}
}

func waitClusterStatus(t testing.TB, s *st.Server, id, status string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r := s.Do(t, "GET", "/v1/clusters/"+id, st.AdminToken, nil); r.Status == 200 && r.JSON(t)["status"] == status {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("cluster %s never became %s", id, status)
}

// Every route that takes a body refuses a compressed one with 415, as the
// document says, and stores nothing.
func TestEveryBodyRouteRefusesACompressedBody(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	id := registerCluster(t, s, "plain")
	before := historySize(t, s)
	for _, r := range []struct{ method, path string }{
		{"POST", "/v1/clusters"}, {"PATCH", "/v1/clusters/" + id}, {"POST", "/v1/migrations"},
	} {
		got := s.DoHeaders(t, r.method, r.path, st.OrgAdminToken, http.Header{"Content-Encoding": {"gzip"}}, cluster("plain-2", "search"))
		if got.Status != http.StatusUnsupportedMediaType || got.ErrorField(t) != "Content-Encoding" {
			t.Errorf("%s %s gzip: %d %s", r.method, r.path, got.Status, got.Body)
		}
	}
	if historySize(t, s) != before {
		t.Fatal("a refused body stored events")
	}
}
