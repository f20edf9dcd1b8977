package api_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/zdm-io/zdm/domain"
	st "github.com/zdm-io/zdm/service/servicetest"
)

// A cluster's storage path is checked where it is registered or changed:
// a clean absolute path of a directory zdmd can read, or nothing.
func TestAClustersStoragePathIsADirectoryZdmCanRead(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	before := historySize(t, s)
	for _, bad := range []string{"relative/data", dir + "/../x", filepath.Join(dir, "missing"), file} {
		body := cluster("prod", "search")
		body["storage_path"] = bad
		if r := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, body); r.Status != 400 || r.ErrorField(t) != "storage_path" {
			t.Fatalf("storage_path %q: %d %s", bad, r.Status, r.Body)
		}
	}
	if n := historySize(t, s); n != before {
		t.Fatalf("refused registrations stored %d events", n-before)
	}
	body := cluster("prod", "search")
	body["storage_path"] = dir
	r := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, body)
	if r.Status != 201 || r.JSON(t)["storage_path"] != dir {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, map[string]any{"storage_path": "nope"}); r.Status != 400 || r.ErrorField(t) != "storage_path" {
		t.Fatalf("PATCH a bad path: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, map[string]any{"storage_path": ""}); r.Status != 200 || r.JSON(t)["storage_path"] != nil {
		t.Fatalf("PATCH removing the path: %d %s", r.Status, r.Body)
	}
}

func TestTheCopyModeIsOneZdmKnows(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	src := registerCluster(t, s, "prod")
	r := s.Do(t, "POST", "/v1/migrations", st.OrgAdminToken, map[string]any{
		"source_cluster_id": src, "options": map[string]any{"copy_mode": "files"},
		"target": map[string]any{"name": "new-prod", "project": "search", "provisioner": "simulated"},
	})
	if r.Status != 400 || r.ErrorField(t) != "options.copy_mode" {
		t.Fatalf("copy_mode files: %d %s", r.Status, r.Body)
	}
	r = s.Do(t, "POST", "/v1/migrations", st.OrgAdminToken, map[string]any{
		"source_cluster_id": src,
		"target":            map[string]any{"name": "new-prod", "project": "search", "provisioner": "simulated"},
	})
	if opts, _ := r.JSON(t)["options"].(map[string]any); r.Status != 202 || opts["copy_mode"] != domain.CopyModeAuto {
		t.Fatalf("the default copy mode: %d %s", r.Status, r.Body)
	}
}
