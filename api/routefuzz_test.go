package api_test

import (
	"net/url"
	"strings"
	"testing"

	st "github.com/zdm-io/zdm/service/servicetest"
)

// FuzzEveryRoute sends any body, identifier, query and role to every
// route the server serves (apiRoutes, which the OpenAPI document must
// describe), as an API fuzzer working from the document does:
// the answer is never a 5xx, an error has its documented shape, and
// every answer conforms to the document (Do checks it).
func FuzzEveryRoute(f *testing.F) {
	s := st.Start(f, st.Config(f.TempDir()))
	src := s.Do(f, "POST", "/v1/clusters", st.OrgAdminToken, cluster("prod", "search")).JSON(f)["id"].(string)
	mig := startMigration(f, s, st.OrgAdminToken, src).JSON(f)["id"].(string)
	routes := apiRoutes(s)
	at := func(method, path string) uint8 {
		for i, r := range routes {
			if r == (route{method, path}) {
				return uint8(i)
			}
		}
		f.Fatalf("the server serves no %s %s", method, path)
		return 0
	}
	tokens := []string{"", st.AdminToken, st.OrgAdminToken, st.ProjectAdminToken, st.ViewerToken, st.OtherOrgToken, st.MetricsToken, "nobody"}
	for i := range routes {
		f.Add(uint8(i), uint8(2), "", "", "")
		f.Add(uint8(i), uint8(4), "$mig", "after=1&limit=5&steps=true", `{}`)
		f.Add(uint8(i), uint8(3), "$src", "limit=0", `{"name":"x","options":{"lag_threshold_seconds":-1}}`)
	}
	f.Add(at("PATCH", "/v1/clusters/{id}"), uint8(2), "$src", "", `{"password":"","endpoint":"::1"}`)
	f.Add(at("PATCH", "/v1/migrations/{id}"), uint8(2), "$mig", "", `{"options":{"copy_rate_limit":1e400,"notify":[null]}}`)
	f.Add(at("GET", "/v1/migrations/{id}/events"), uint8(1), "$mig", "after=-1&limit=99999999999999999999", ``)
	f.Add(at("POST", "/v1/clusters"), uint8(2), "", "", `{"name":"a","organization":"acme","project":"search","endpoint":"h:1","storage":{"s3":{"endpoint":"::"}}}`)
	f.Fuzz(func(t *testing.T, op, role uint8, id, query, body string) {
		r := routes[int(op)%len(routes)]
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
