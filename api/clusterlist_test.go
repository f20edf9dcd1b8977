package api_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	st "github.com/zdm-io/zdm/service/servicetest"
)

// The cluster list is filtered by organization, project, status and
// spare, and paged; a bad filter is 400 naming it.
func TestTheClusterListFiltersAndPages(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	register := func(token, name, org, project string, spare bool) string {
		t.Helper()
		body := map[string]any{"name": name, "organization": org, "project": project, "endpoint": name + ".milvus.test:19530", "spare": spare}
		r := s.Do(t, "POST", "/v1/clusters", token, body)
		if r.Status != http.StatusCreated {
			t.Fatalf("register %s: %d %s", name, r.Status, r.Body)
		}
		return r.JSON(t)["id"].(string)
	}
	list := func(token, params string) (ids []string, more bool, next string) {
		t.Helper()
		r := s.Do(t, "GET", "/v1/clusters?"+params, token, nil)
		if r.Status != 200 {
			t.Fatalf("GET /v1/clusters?%s: %d %s", params, r.Status, r.Body)
		}
		body := r.JSON(t)
		for _, c := range body["clusters"].([]any) {
			ids = append(ids, c.(map[string]any)["id"].(string))
		}
		next, _ = body["next_after"].(string)
		return ids, body["more"] == true, next
	}
	// Oldest first: a (search), b (ads, spare), c (search, spare); g is
	// another organization's.
	a := register(st.OrgAdminToken, "a", "acme", "search", false)
	b := register(st.OrgAdminToken, "b", "acme", "ads", true)
	c := register(st.OrgAdminToken, "c", "acme", "search", true)
	g := register(st.OtherOrgToken, "g", "globex", "web", false)
	// a's migration makes it Locked and gives it a target, Syncing, in
	// project search.
	r := startMigration(t, s, st.OrgAdminToken, a)
	if r.Status != 202 {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	s.WaitState(t, r.JSON(t)["id"].(string), "syncing", 10*time.Second)
	target, _, _ := list(st.ViewerToken, "status=syncing")
	if len(target) != 1 || slices.Contains([]string{a, b, c, g}, target[0]) {
		t.Fatalf("the Syncing clusters: %v, want the migration's target", target)
	}

	all, _, _ := list(st.ViewerToken, "")
	if want := []string{target[0], c, b, a}; !slices.Equal(all, want) {
		t.Fatalf("acme's list: %v, want %v", all, want)
	}
	for _, c := range []struct {
		params string
		want   []string
	}{
		{"project=ads", []string{b}},
		{"project=search&spare=true", []string{c}},
		{"spare=true", []string{c, b}},
		{"status=locked", []string{a}},
		{"status=Running,LOCKED&project=search", []string{c, a}},
		{"status=Syncing,Migrated&spare=false", target},
		{"organization=globex", nil},
		{"organization=acme&spare=false&project=search", []string{target[0], a}},
	} {
		if got, more, _ := list(st.ViewerToken, c.params); !slices.Equal(got, c.want) || more {
			t.Errorf("?%s: %v (more %v), want %v", c.params, got, more, c.want)
		}
	}
	if got, _, _ := list(st.OtherOrgToken, ""); !slices.Equal(got, []string{g}) {
		t.Errorf("globex's list: %v, want [%s]", got, g)
	}

	// Pages of one, in the list's order; the cluster that ended a page
	// may be deleted before the next is asked for.
	var paged []string
	params := "limit=1"
	for range len(all) + 1 {
		ids, more, next := list(st.ViewerToken, params)
		paged = append(paged, ids...)
		if !more {
			break
		}
		if len(ids) != 1 || next != ids[0] {
			t.Fatalf("a page of %v says next_after %q", ids, next)
		}
		if next == b {
			if r := s.Do(t, "DELETE", "/v1/clusters/"+b, st.OrgAdminToken, nil); r.Status != http.StatusNoContent {
				t.Fatalf("delete %s: %d %s", b, r.Status, r.Body)
			}
		}
		params = "limit=1&after=" + next
	}
	if !slices.Equal(paged, all) {
		t.Fatalf("paged: %v, listed: %v", paged, all)
	}

	for _, c := range []struct{ params, field string }{
		{"status=gone", "status"}, {"status=Running,", "status"}, {"spare=yes", "spare"}, {"limit=0", "limit"},
		{"limit=1001", "limit"}, {"after=c-none", "after"}, {"after=" + g, "after"}, {"project=", "project"},
	} {
		r := s.Do(t, "GET", "/v1/clusters?"+c.params, st.ViewerToken, nil)
		if r.Status != 400 || r.ErrorField(t) != c.field {
			t.Errorf("?%s: %d %s, want 400 naming %s", c.params, r.Status, r.Body, c.field)
		}
	}
}
