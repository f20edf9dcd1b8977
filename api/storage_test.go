package api_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
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

// A cluster's S3 storage is checked field by field, is one storage or the
// other, and its keys are sealed: no answer and no event holds them, and a
// change of the Milvus password keeps them.
func TestAClustersS3StorageIsCheckedAndItsKeysNeverShow(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	const secret = "s3-secret-never-shown"
	good := func() map[string]any {
		return map[string]any{"endpoint": "127.0.0.1:9000", "bucket": "milvus-bucket", "root_path": "files", "access_key": "ak", "secret_key": secret}
	}
	before := historySize(t, s)
	for _, c := range []struct {
		change func(map[string]any, map[string]any)
		field  string
	}{
		{func(_, s3 map[string]any) { s3["endpoint"] = "no-port" }, "storage_s3.endpoint"},
		{func(_, s3 map[string]any) { delete(s3, "endpoint") }, "storage_s3.endpoint"},
		{func(_, s3 map[string]any) { s3["bucket"] = "Upper_Case" }, "storage_s3.bucket"},
		{func(_, s3 map[string]any) { s3["root_path"] = "files/../../x" }, "storage_s3.root_path"},
		{func(_, s3 map[string]any) { delete(s3, "secret_key") }, "storage_s3.secret_key"},
		{func(b, _ map[string]any) { b["storage_path"] = t.TempDir() }, "storage_s3"},
	} {
		body, s3 := cluster("prod", "search"), good()
		body["storage_s3"] = s3
		c.change(body, s3)
		if r := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, body); r.Status != 400 || r.ErrorField(t) != c.field {
			t.Fatalf("want 400 on %s: %d %s", c.field, r.Status, r.Body)
		}
	}
	if n := historySize(t, s); n != before {
		t.Fatalf("refused registrations stored %d events", n-before)
	}
	body := cluster("prod", "search")
	body["storage_s3"] = good()
	r := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, body)
	s3, _ := r.JSON(t)["storage_s3"].(map[string]any)
	if r.Status != 201 || s3["bucket"] != "milvus-bucket" || s3["root_path"] != "files" || strings.Contains(string(r.Body), secret) || strings.Contains(string(r.Body), `"ak"`) {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	// The Milvus password changes; the storage's keys stay.
	if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, map[string]any{"username": "u", "password": "p"}); r.Status != 200 {
		t.Fatalf("PATCH the password: %d %s", r.Status, r.Body)
	}
	creds, err := s.Service().ClusterCredentials(context.Background(), id)
	if err != nil || creds.StorageAccessKey != "ak" || creds.StorageSecretKey != secret || creds.Username != "u" {
		t.Fatalf("credentials after the password changed: %+v %v", creds, err)
	}
	if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, map[string]any{"storage_path": t.TempDir()}); r.Status != 400 || r.ErrorField(t) != "storage_path" {
		t.Fatalf("PATCH a path beside the S3 storage: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, map[string]any{"storage_s3": map[string]any{}}); r.Status != 200 || r.JSON(t)["storage_s3"] != nil {
		t.Fatalf("PATCH removing the S3 storage: %d %s", r.Status, r.Body)
	}
	if creds, _ := s.Service().ClusterCredentials(context.Background(), id); creds.StorageSecretKey != "" || creds.Username != "u" {
		t.Fatalf("credentials after the storage went: %+v", creds)
	}
	for _, subj := range []string{domain.ClusterSubject + id} {
		recs, _, err := s.Store().Load(context.Background(), subj, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			if data, _ := json.Marshal(rec.Event); strings.Contains(string(data), secret) {
				t.Fatalf("an event holds the secret key: %s", data)
			}
		}
	}
}
