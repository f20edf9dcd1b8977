package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/domain"
	st "github.com/zdm-io/zdm/service/servicetest"
)

// A cluster's TLS and its proxy's are checked field by field where they
// are given; the registry shows their modes, and no answer and no event
// holds a certificate or a key. A change of the password keeps them, and
// mode "none" removes them.
func TestAClustersTLSIsCheckedAndItsKeysNeverShow(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	c := milvustest.NewCerts(t)
	ca, cert, key := c.PEM(t, "ca.pem"), c.PEM(t, "client.pem"), c.PEM(t, "client.key")
	before := historySize(t, s)
	for _, bad := range []struct {
		field, value string
		field2       string
	}{
		{"tls", `{"mode": "on"}`, "tls.mode"},
		{"tls", `{"mode": "one_way", "ca_pem": "junk"}`, "tls.ca_pem"},
		{"tls", `{"mode": "mutual", "ca_pem": ` + quote(ca) + `}`, "tls.client_cert_pem"},
		{"proxy_tls", `{"mode": "one_way"}`, "proxy_tls.cert_pem"},
		{"proxy_tls", `{"mode": "mutual", "cert_pem": ` + quote(cert) + `, "key_pem": ` + quote(key) + `}`, "proxy_tls.client_ca_pem"},
		{"proxy_tls", `{"mode": "one_way", "cert_pem": ` + quote(cert) + `, "key_pem": ` + quote(c.PEM(t, "server.key")) + `}`, "proxy_tls.key_pem"},
	} {
		body := cluster("prod", "search")
		var v any
		if err := json.Unmarshal([]byte(bad.value), &v); err != nil {
			t.Fatal(err)
		}
		body[bad.field] = v
		if r := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, body); r.Status != 400 || r.ErrorField(t) != bad.field2 {
			t.Fatalf("%s %s: want 400 on %s: %d %s", bad.field, bad.value, bad.field2, r.Status, r.Body)
		}
	}
	if n := historySize(t, s); n != before {
		t.Fatalf("refused registrations stored %d events", n-before)
	}
	body := cluster("prod", "search")
	body["tls"] = map[string]any{"mode": "mutual", "ca_pem": ca, "server_name": "localhost", "client_cert_pem": cert, "client_key_pem": key}
	body["proxy_tls"] = map[string]any{"mode": "one_way", "cert_pem": cert, "key_pem": key}
	r := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, body)
	if r.Status != 201 || r.JSON(t)["tls"] != "mutual" || r.JSON(t)["proxy_tls"] != "one_way" || strings.Contains(string(r.Body), "BEGIN") {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, map[string]any{"username": "u", "password": "p"}); r.Status != 200 {
		t.Fatalf("PATCH the password: %d %s", r.Status, r.Body)
	}
	creds, err := s.Service().ClusterCredentials(context.Background(), id)
	if err != nil || creds.TLS == nil || creds.TLS.KeyPEM != key || creds.ProxyTLS == nil || creds.ProxyTLS.CertPEM != cert || creds.Username != "u" {
		t.Fatalf("credentials after the password changed: %v", err)
	}
	if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, map[string]any{"tls": map[string]any{"mode": "none", "ca_pem": ca}}); r.Status != 400 || r.ErrorField(t) != "tls" {
		t.Fatalf("PATCH mode none with a CA: %d %s", r.Status, r.Body)
	}
	r = s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, map[string]any{"tls": map[string]any{"mode": "none"}})
	if r.Status != 200 || r.JSON(t)["tls"] != nil || r.JSON(t)["proxy_tls"] != "one_way" {
		t.Fatalf("PATCH removing TLS: %d %s", r.Status, r.Body)
	}
	if creds, _ := s.Service().ClusterCredentials(context.Background(), id); creds.TLS != nil || creds.ProxyTLS == nil || creds.Username != "u" {
		t.Fatal("credentials after TLS went: TLS kept, or the proxy's or the password lost")
	}
	recs, _, err := s.Store().Load(context.Background(), domain.ClusterSubject+id, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if data, _ := json.Marshal(rec.Event); strings.Contains(string(data), "BEGIN") {
			t.Fatalf("an event holds a certificate or a key: %s", data)
		}
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// A body the document bounds is refused by the field it breaks, however
// its characters are escaped; only a body beyond any the document allows
// is 413.
func TestABodyWithinTheDocumentsBoundsIsReadToItsField(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	id := registerCluster(t, s, "big")
	// Two fields of 65,537 characters outside the BMP, each sent as a
	// pair of JSON escapes: 1.6 MB.
	long := strings.Repeat(`\ud83d\ude00`, 65537)
	body := `{"tls":{"mode":"one_way","server_name":"` + long + `","ca_pem":"` + long + `"}}`
	if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, body); r.Status != 400 || r.ErrorField(t) != "tls.server_name" {
		t.Fatalf("a %d-byte body: %d %.200s, want 400 naming tls.server_name", len(body), r.Status, r.Body)
	}
	huge := `{"tls":{"mode":"mutual","ca_pem":"` + strings.Repeat("A", 9<<20) + `"}}`
	if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, huge); r.Status != 413 || r.ErrorCode(t) == "" {
		t.Fatalf("a %d-byte body: %d %.200s, want 413 with an error", len(huge), r.Status, r.Body)
	}
}
