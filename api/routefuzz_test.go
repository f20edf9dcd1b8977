package api_test

import (
	"net/url"
	"strings"
	"testing"

	st "github.com/zdm-io/zdm/service/servicetest"
)

// routes are every operation of the API, with {id} where a path takes
// an identifier.
var routes = []struct{ method, path string }{
	{"GET", "/v1/clusters"}, {"POST", "/v1/clusters"}, {"GET", "/v1/clusters/{id}"},
	{"PATCH", "/v1/clusters/{id}"}, {"DELETE", "/v1/clusters/{id}"},
	{"GET", "/v1/migrations"}, {"POST", "/v1/migrations"}, {"GET", "/v1/migrations/{id}"},
	{"PATCH", "/v1/migrations/{id}"}, {"GET", "/v1/migrations/{id}/events"},
	{"POST", "/v1/migrations/{id}/stop-sync"}, {"POST", "/v1/migrations/{id}/cancel"},
	{"GET", "/v1/whoami"}, {"GET", "/v1/provisioners"}, {"GET", "/readyz"}, {"GET", "/healthz"},
	{"GET", "/metrics"}, {"GET", "/v1/openapi.yaml"},
}

// FuzzEveryRoute sends any body, identifier, query and role to every
// operation, as an API fuzzer working from the OpenAPI document does:
// the answer is never a 5xx, an error has its documented shape, and
// every answer conforms to the document (Do checks it).
func FuzzEveryRoute(f *testing.F) {
	s := st.Start(f, st.Config(f.TempDir()))
	src := s.Do(f, "POST", "/v1/clusters", st.OrgAdminToken, cluster("prod", "search")).JSON(f)["id"].(string)
	mig := startMigration(f, s, st.OrgAdminToken, src).JSON(f)["id"].(string)
	tokens := []string{"", st.AdminToken, st.OrgAdminToken, st.ProjectAdminToken, st.ViewerToken, st.OtherOrgToken, st.MetricsToken, "nobody"}
	for i := range routes {
		f.Add(uint8(i), uint8(2), "", "", "")
		f.Add(uint8(i), uint8(4), "$mig", "after=1&limit=5&steps=true", `{}`)
		f.Add(uint8(i), uint8(3), "$src", "limit=0", `{"name":"x","options":{"lag_threshold_seconds":-1}}`)
	}
	f.Add(uint8(3), uint8(2), "$src", "", `{"password":"","endpoint":"::1"}`)
	f.Add(uint8(8), uint8(2), "$mig", "", `{"options":{"copy_rate_limit":1e400,"notify":[null]}}`)
	f.Add(uint8(9), uint8(1), "$mig", "after=-1&limit=99999999999999999999", ``)
	f.Add(uint8(1), uint8(2), "", "", `{"name":"a","organization":"acme","project":"search","endpoint":"h:1","storage":{"s3":{"endpoint":"::"}}}`)
	f.Fuzz(func(t *testing.T, route, role uint8, id, query, body string) {
		r := routes[int(route)%len(routes)]
		switch id {
		case "$src":
			id = src
		case "$mig":
			id = mig
		}
		path := strings.ReplaceAll(r.path, "{id}", url.PathEscape(id))
		if q, err := url.ParseQuery(query); err == nil && len(q) > 0 {
			path += "?" + q.Encode()
		}
		var sent any
		if body != "" {
			sent = body
		}
		resp := s.Do(t, r.method, path, tokens[int(role)%len(tokens)], sent)
		if resp.Status >= 500 {
			t.Fatalf("%s %s answered %d for %q: %s", r.method, path, resp.Status, body, resp.Body)
		}
		if resp.Status >= 400 {
			resp.ErrorCode(t)
		}
	})
}
