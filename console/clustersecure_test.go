package console_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	st "github.com/zdm-io/zdm/service/servicetest"
)

// The register form sets a cluster's TLS (a PEM typed or read from a
// file) and its S3 storage; a refusal is shown by its field and registers
// nothing. Editing shows the modes and the storage, never a key or PEM,
// and sends a part only when it changed.
func TestConsoleSetsAClustersTLSAndStorage(t *testing.T) {
	s := startServer(t)
	certs := milvustest.NewCerts(t)
	b := newBrowser(t, s.URL)
	b.signIn(st.OrgAdminToken)
	b.run(chromedp.Click(chromedp.CSS(`#nav a[data-nav="clusters"]`)))
	b.until("the form", `document.getElementById("f-endpoint") && document.querySelectorAll("#clusters tr[data-cluster]").length == 1`, 10*time.Second)
	if open := eval[bool](b, `document.getElementById("secure").open`); open {
		t.Error("S3 storage and TLS are unfolded on a new form; most clusters need neither")
	}
	b.click("the fold", `#secure summary`)
	b.run(chromedp.SetValue(chromedp.ID("f-name"), "secured"), chromedp.SetValue(chromedp.ID("f-project"), "search"),
		chromedp.SetValue(chromedp.ID("f-endpoint"), "milvus-secured:19530"),
		chromedp.SetValue(chromedp.ID("f-storage_s3-endpoint"), "minio.internal:9000"), chromedp.SetValue(chromedp.ID("f-storage_s3-bucket"), "Milvus_Bucket"),
		chromedp.SetValue(chromedp.ID("f-storage_s3-root_path"), "files"),
		chromedp.SetValue(chromedp.ID("f-storage_s3-access_key"), "key"), chromedp.SetValue(chromedp.ID("f-storage_s3-secret_key"), "s3cret-key"),
		chromedp.Click(chromedp.ID("register-button")))
	b.until("the bucket's error", `document.querySelector('[data-error="storage_s3.bucket"]').textContent.includes("must be a bucket name")`, 10*time.Second)
	if n := len(s.Do(t, "GET", "/v1/clusters", st.AdminToken, nil).JSON(t)["clusters"].([]any)); n != 1 {
		t.Fatalf("a refused storage registered a cluster: %d clusters", n)
	}

	// TLS: one-way to Milvus with a CA read from a file, mutual on the
	// proxy. A mutual proxy without its client CA is refused by its field.
	b.run(chromedp.SetValue(chromedp.ID("f-storage_s3-bucket"), "milvus-bucket"), chromedp.SetValue(chromedp.ID("f-tls-mode"), "one_way"),
		chromedp.SetUploadFiles(chromedp.CSS(`input[data-pem-for="tls.ca_pem"]`), []string{certs.Path("ca.pem")}))
	b.until("the CA read from its file", `document.getElementById("f-tls-ca_pem").value.includes("BEGIN CERTIFICATE")`, 5*time.Second)
	b.run(chromedp.SetValue(chromedp.ID("f-proxy_listen"), freeAddress(t)), chromedp.SetValue(chromedp.ID("f-proxy_tls-mode"), "mutual"),
		chromedp.SetValue(chromedp.ID("f-proxy_tls-cert_pem"), certs.PEM(t, "proxy.pem")), chromedp.SetValue(chromedp.ID("f-proxy_tls-key_pem"), certs.PEM(t, "proxy.key")),
		chromedp.Click(chromedp.ID("register-button")))
	b.until("the client CA's error", `document.querySelector('[data-error="proxy_tls.client_ca_pem"]').textContent.includes("required")`, 10*time.Second)
	b.run(chromedp.SetValue(chromedp.ID("f-proxy_tls-client_ca_pem"), certs.PEM(t, "ca.pem")), chromedp.Click(chromedp.ID("register-button")))
	b.until("the new row", `document.getElementById("register-message").textContent.startsWith("Registered secured") && document.querySelectorAll("#clusters tr[data-cluster]").length == 2`, 10*time.Second)
	var secured map[string]any
	for _, c := range s.Do(t, "GET", "/v1/clusters", st.AdminToken, nil).JSON(t)["clusters"].([]any) {
		if c := c.(map[string]any); c["name"] == "secured" {
			secured = c
		}
	}
	s3, _ := secured["storage_s3"].(map[string]any)
	if secured["tls"] != "one_way" || secured["proxy_tls"] != "mutual" || s3["endpoint"] != "minio.internal:9000" || s3["bucket"] != "milvus-bucket" || s3["root_path"] != "files" {
		t.Fatalf("the registered cluster: %v", secured)
	}
	if v := eval[string](b, `["f-tls-ca_pem", "f-proxy_tls-key_pem", "f-tls-mode", "f-storage_s3-secret_key", "f-storage_s3-endpoint"].map((id) => document.getElementById(id).value).join("")`); v != "" {
		t.Errorf("the form kept %q after registering", v)
	}
	id := secured["id"].(string)
	row := `#clusters tr[data-cluster="` + id + `"]`
	b.until("the row's TLS and storage", `["TLS one-way", "TLS mutual", "storage http://minio.internal:9000/milvus-bucket/files"].every((s) => document.querySelector('`+row+`').textContent.includes(s))`, 5*time.Second)

	// Editing: the modes and the storage are shown, unfolded; no key or
	// PEM is. Saving with nothing changed sends nothing; a mode set to
	// none removes TLS, and leaves the proxy's and the storage as they
	// were.
	b.click("the edit button", row+` button[data-edit]`)
	b.until("the edit form", `document.getElementById("form-title").textContent == "Edit secured" && document.getElementById("secure").open && document.getElementById("f-tls-mode").value == "one_way" && document.getElementById("f-proxy_tls-mode").value == "mutual" && document.getElementById("f-storage_s3-bucket").value == "milvus-bucket"`, 5*time.Second)
	if v := eval[string](b, `["f-tls-ca_pem", "f-proxy_tls-cert_pem", "f-storage_s3-access_key"].map((id) => document.getElementById(id).value).join("")`); v != "" {
		t.Errorf("the edit form shows a secret: %q", v)
	}
	b.screenshot("9-cluster-edit-tls")
	b.run(chromedp.Click(chromedp.ID("register-button")))
	b.until("nothing changed", `document.getElementById("register-message").textContent == "Nothing changed."`, 5*time.Second)
	b.run(chromedp.SetValue(chromedp.ID("f-tls-mode"), ""), chromedp.Click(chromedp.ID("register-button")))
	b.until("the saved message", `document.getElementById("register-message").textContent == "Saved secured: tls changed."`, 10*time.Second)
	got := s.Do(t, "GET", "/v1/clusters/"+id, st.AdminToken, nil).JSON(t)
	if _, has := got["tls"]; has || got["proxy_tls"] != "mutual" || got["storage_s3"] == nil {
		t.Fatalf("after removing TLS to Milvus: %v", got)
	}

	// The S3 storage emptied and a storage path typed: one update
	// replaces the one with the other.
	dir := t.TempDir()
	// The list is read again after a save: an edit button clicked before
	// that opens the form with the row as it was.
	b.until("the row without TLS to Milvus", `!document.querySelector('`+row+`').textContent.includes("TLS one-way")`, 10*time.Second)
	b.click("the edit button", row+` button[data-edit]`)
	b.until("the edit form", `document.getElementById("form-title").textContent == "Edit secured" && document.getElementById("f-tls-mode").value == ""`, 5*time.Second)
	for _, f := range []string{"endpoint", "bucket", "root_path"} {
		eval[string](b, `document.getElementById("f-storage_s3-`+f+`").value = ""`) // chromedp cannot set an empty value
	}
	b.run(chromedp.SetValue(chromedp.ID("f-storage_path"), dir), chromedp.Click(chromedp.ID("register-button")))
	b.until("the saved message", `document.getElementById("register-message").textContent == "Saved secured: storage_path, storage_s3 changed."`, 10*time.Second)
	got = s.Do(t, "GET", "/v1/clusters/"+id, st.AdminToken, nil).JSON(t)
	if _, has := got["storage_s3"]; has || got["storage_path"] != dir || got["proxy_tls"] != "mutual" {
		t.Fatalf("after replacing the S3 storage with a path: %v", got)
	}
	b.screenshot("9-cluster-storage-path")
	if body := string(s.Do(t, "GET", "/v1/clusters/"+id, st.AdminToken, nil).Body); strings.Contains(body, "PRIVATE KEY") || strings.Contains(body, "s3cret") {
		t.Fatal("the API answered a secret")
	}
}

// freeAddress is a loopback address nothing listens on yet.
func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
