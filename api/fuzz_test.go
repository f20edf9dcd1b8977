package api_test

import (
	"testing"

	st "github.com/zdm-io/zdm/service/servicetest"
)

// FuzzCreateMigrationBody sends arbitrary bodies to POST /v1/migrations:
// the answer is never a 5xx, and a refused body stores nothing.
func FuzzCreateMigrationBody(f *testing.F) {
	s := st.Start(f, st.Config(f.TempDir()))
	src := s.Do(f, "POST", "/v1/clusters", st.OrgAdminToken, cluster("prod", "search")).JSON(f)["id"].(string)
	seeds := []string{
		``, `{}`, `null`, `[]`, `"x"`, `{"source_cluster_id":""}`,
		`{"source_cluster_id":"` + src + `","target":{"name":"n","project":"search","provisioner":"simulated"}}`,
		`{"source_cluster_id":"` + src + `","target":{"name":"n","project":"search","provisioner":"simulated"},"options":{"lag_threshold_seconds":-1}}`,
		`{"source_cluster_id":"` + src + `","target":{"name":"n","project":"search","provisioner":"simulated"},"options":{"sync_time_limit":"-5h"}}`,
		`{"source_cluster_id":"` + src + `","target":{"name":"n","project":"search","provisioner":"simulated"},"options":{"notify":["a@b.c","\r\nBcc: x@y"]}}`,
		`{"source_cluster_id":"` + src + `","target":{"name":"` + string(make([]byte, 300)) + `"}}`,
		`{"source_cluster_id":1e400}`, `{"target":{"name":{}}}`, `{"options":{"notify":"a@b.c"}}`, `{} {}`,
	}
	for _, seed := range seeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		// Counted in the event store, not in the projection, which folds
		// events in after the answer.
		before := historySize(t, s)
		r := s.Do(t, "POST", "/v1/migrations", st.OrgAdminToken, body)
		if r.Status >= 500 {
			t.Fatalf("%d for %q: %s", r.Status, body, r.Body)
		}
		if r.Status >= 400 {
			r.ErrorCode(t) // the error body has its shape
			if after := historySize(t, s); after != before {
				t.Fatalf("a refused body (%d) stored %d events", r.Status, after-before)
			}
			return
		}
		// An accepted body started a migration; cancel it so the source is
		// free for the next input.
		id := r.JSON(t)["id"].(string)
		if c := s.Do(t, "POST", "/v1/migrations/"+id+"/cancel", st.OrgAdminToken, nil); c.Status != 202 {
			t.Fatalf("cancel: %d %s", c.Status, c.Body)
		}
		s.WaitState(t, id, "cancelled", 5e9)
		waitClusterStatus(t, s, src, "Running")
	})
}
