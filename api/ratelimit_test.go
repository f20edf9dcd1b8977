package api_test

import (
	"testing"

	"github.com/zdm-io/zdm/domain"
	st "github.com/zdm-io/zdm/service/servicetest"
)

func TestTheCopyRateLimitChangesWhileTheCopyRunsAndNotAfter(t *testing.T) {
	s, _, id := copyingMigration(t)
	path := "/v1/migrations/" + id
	limit := func(v any) map[string]any { return map[string]any{"options": map[string]any{"copy_rate_limit": v}} }
	for _, bad := range []struct {
		body  any
		field string
	}{
		{limit(-1), "options.copy_rate_limit"},
		{limit(2_000_000_000), "options.copy_rate_limit"},
		{limit("fast"), "options.copy_rate_limit"},
		{map[string]any{}, "options.copy_rate_limit"},
		{map[string]any{"options": map[string]any{"lag_threshold_seconds": 5}}, "options.lag_threshold_seconds"}, // not one a running migration changes
	} {
		r := s.Do(t, "PATCH", path, st.OrgAdminToken, bad.body)
		if r.Status != 400 || r.ErrorField(t) != bad.field {
			t.Fatalf("PATCH %v: %d %s, want 400 naming %s", bad.body, r.Status, r.Body, bad.field)
		}
	}
	if r := s.Do(t, "PATCH", path, st.ViewerToken, limit(500)); r.Status != 403 {
		t.Fatalf("a viewer's PATCH: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "PATCH", "/v1/migrations/m-missing", st.AdminToken, limit(500)); r.Status != 404 {
		t.Fatalf("PATCH of a missing migration: %d %s", r.Status, r.Body)
	}
	got := func() float64 {
		opts, _ := s.Do(t, "GET", path, st.OrgAdminToken, nil).JSON(t)["options"].(map[string]any)
		v, _ := opts["copy_rate_limit"].(float64)
		return v
	}
	if v := got(); v != 0 {
		t.Fatalf("the limit before any change: %v, want none", v)
	}
	for i := 0; i < 2; i++ { // the same value twice records it once
		r := s.Do(t, "PATCH", path, st.OrgAdminToken, limit(2500))
		if r.Status != 200 {
			t.Fatalf("PATCH #%d: %d %s", i+1, r.Status, r.Body)
		}
	}
	if v := got(); v != 2500 {
		t.Fatalf("the limit after the change: %v, want 2500", v)
	}
	changes := 0
	for _, e := range s.Do(t, "GET", path+"/events?limit=1000&steps=true", st.ViewerToken, nil).JSON(t)["events"].([]any) {
		if ev := e.(map[string]any); ev["type"] == domain.TypeCopyRateLimitChanged {
			if d := ev["data"].(map[string]any); d["rows_per_second"] != 2500.0 || d["by"] != "olga" {
				t.Fatalf("the change recorded: %v", d)
			}
			changes++
		}
	}
	if changes != 1 {
		t.Fatalf("%d changes recorded, want 1", changes)
	}
	if r := s.Do(t, "PATCH", path, st.OrgAdminToken, limit(0)); r.Status != 200 || got() != 0 {
		t.Fatalf("lifting the limit: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "POST", path+"/cancel", st.OrgAdminToken, nil); r.Status != 202 {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "PATCH", path, st.OrgAdminToken, limit(100)); r.Status != 409 {
		t.Fatalf("PATCH after the end: %d %s, want 409", r.Status, r.Body)
	}
}
