package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	st "github.com/zdm-io/zdm/service/servicetest"
)

const tlsProxyAddr = "127.0.0.1:19595"

// TestMigrationBetweenClustersThatRequireTLS migrates a source that
// speaks one-way TLS onto a target that asks for a client certificate,
// while a pymilvus client writes through the proxy over mutual TLS; then
// the same client, unchanged, reads the target through the proxy.
func TestMigrationBetweenClustersThatRequireTLS(t *testing.T) {
	e := newEnv(t, "")
	certs := milvustest.NewCerts(t)
	src := e.bed.WithTLS(t, "tls-source", 19800, certs, false)
	dst := e.bed.WithTLS(t, "tls-target", 19830, certs, true)
	script := filepath.Join(e.bed.Root, "e2e", "testdata", "tls_client.py")
	client := func(addr, mode string, args ...string) map[string]json.RawMessage {
		return lastJSON(t, e.bed.RunPython(t, script, append([]string{addr, certs.Dir, mode}, args...)...))
	}
	client(src, "one_way", "setup", "3000")
	// The servers require what they were started with.
	refuses := func(addr, mode string) {
		t.Helper()
		cmd := exec.Command(e.bed.Python, script, addr, certs.Dir, mode, "count")
		cmd.Env = append(os.Environ(), "TLS_CLIENT_TIMEOUT=3")
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Fatalf("%s answered a client with %s: %s", addr, mode, out)
		}
	}
	refuses(src, "plain")
	refuses(dst, "one_way")
	p := e.serve(t)

	// Certificates and keys are checked when given, and never answered.
	var out map[string]any
	body := map[string]any{"name": "prod", "organization": "acme", "project": "search", "endpoint": src,
		"tls": map[string]any{"mode": "one_way", "ca_pem": "not a certificate"}}
	var refused struct{ Error struct{ Field string } }
	if code := p.Call(t, "POST", "/v1/clusters", body, &refused); code != 400 || refused.Error.Field != "tls.ca_pem" {
		t.Fatalf("a CA that is no certificate: %d %+v", code, refused)
	}
	body["tls"] = map[string]any{"mode": "one_way", "ca_pem": certs.PEM(t, "ca.pem"), "server_name": "localhost"}
	body["proxy_listen"] = tlsProxyAddr
	body["proxy_tls"] = map[string]any{"mode": "mutual", "cert_pem": certs.PEM(t, "proxy.pem"), "key_pem": certs.PEM(t, "proxy.key"),
		"client_ca_pem": certs.PEM(t, "ca.pem")}
	srcID := registerRaw(t, p, body)
	registerRaw(t, p, map[string]any{"name": "spare", "organization": "acme", "project": "search", "endpoint": dst, "spare": true,
		"tls": map[string]any{"mode": "mutual", "ca_pem": certs.PEM(t, "ca.pem"), "server_name": "localhost",
			"client_cert_pem": certs.PEM(t, "client.pem"), "client_key_pem": certs.PEM(t, "client.key")}})
	got, err := p.Get("/v1/clusters")
	if err != nil {
		t.Fatal(err)
	}
	if raw := string(got); strings.Contains(raw, "BEGIN") || !strings.Contains(raw, `"tls":"mutual"`) || !strings.Contains(raw, `"proxy_tls":"mutual"`) {
		t.Fatalf("the registry shows certificates or keys, or not the modes: %s", got)
	}

	// The proxy asks applications for a certificate its client CA signed.
	if err := waitTLSProxy(e, script, certs.Dir); err != nil {
		t.Fatalf("the proxy does not answer a client with a certificate: %v", err)
	}
	refuses(tlsProxyAddr, "one_way")

	writes := make(chan map[string]json.RawMessage, 1)
	go func() {
		out, err := exec.Command(e.bed.Python, script, tlsProxyAddr, certs.Dir, "mutual", "write", "100000", "12").Output()
		if err != nil {
			t.Errorf("writer through the proxy: %v", err)
			writes <- nil
			return
		}
		writes <- lastJSONOf(string(out))
	}()
	time.Sleep(time.Second)
	id := start(t, p, srcID, nil)
	p.WaitFor(t, id, waitTimeout(), func(m st.Migration) bool { return m.State == "syncing" && m.LagSeconds != nil })
	w := <-writes
	if w == nil {
		t.FailNow()
	}
	var present, deleted []int64
	var failed int
	_ = json.Unmarshal(w["present"], &present)
	_ = json.Unmarshal(w["deleted"], &deleted)
	_ = json.Unmarshal(w["failed"], &failed)
	if len(present) < 100 || failed != 0 {
		t.Fatalf("the writer through the proxy: %d keys acknowledged, %d writes failed", len(present), failed)
	}
	p.WaitFor(t, id, time.Minute, func(m st.Migration) bool { return m.LagSeconds != nil && *m.LagSeconds < 0.5 })
	if code := p.Call(t, "POST", "/v1/migrations/"+id+"/stop-sync", map[string]any{"confirm_writes_stopped": true}, &out); code != 202 {
		t.Fatalf("stop-sync: %d %v", code, out)
	}
	p.WaitFor(t, id, 2*time.Minute, func(m st.Migration) bool { return m.State == "switched_over" })

	// Through the proxy (now routed to the target) and on the target
	// itself: the seeded rows and every acknowledged write, no deleted key.
	for _, read := range []struct{ addr, mode string }{{tlsProxyAddr, "mutual"}, {dst, "mutual"}} {
		var ids []int64
		_ = json.Unmarshal(client(read.addr, read.mode, "count")["ids"], &ids)
		if want := 3000 + len(present); len(ids) != want {
			t.Fatalf("%s holds %d rows, want %d", read.addr, len(ids), want)
		}
		for _, k := range present {
			if _, ok := slices.BinarySearch(ids, k); !ok {
				t.Fatalf("%s lacks acknowledged key %d", read.addr, k)
			}
		}
		for _, k := range deleted {
			if _, ok := slices.BinarySearch(ids, k); ok {
				t.Fatalf("%s holds deleted key %d", read.addr, k)
			}
		}
	}
	// zdmd verify reaches both over their TLS and finds them equal.
	verified, err := exec.Command(e.bin, "verify", "--source", src, "--source-tls-ca", certs.Path("ca.pem"), "--source-tls-server-name", "localhost",
		"--target", dst, "--target-tls-ca", certs.Path("ca.pem"), "--target-tls-server-name", "localhost",
		"--target-tls-cert", certs.Path("client.pem"), "--target-tls-key", certs.Path("client.key")).CombinedOutput()
	if err != nil {
		t.Fatalf("zdmd verify over TLS: %v\n%s", err, verified)
	}
	t.Logf("migrated over TLS: 3000 seeded rows and %d keys written through the proxy over mutual TLS (%d deleted), all on the target",
		len(present), len(deleted))
}

func registerRaw(t *testing.T, p *st.Proc, body map[string]any) string {
	t.Helper()
	var out map[string]any
	if code := p.Call(t, "POST", "/v1/clusters", body, &out); code != 201 {
		t.Fatalf("register %v: %d %v", body["name"], code, out)
	}
	return out["id"].(string)
}

// waitTLSProxy waits for the proxy to answer a client over mutual TLS.
func waitTLSProxy(e *env, script, certs string) error {
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		var out []byte
		if out, err = exec.Command(e.bed.Python, script, tlsProxyAddr, certs, "mutual", "count").CombinedOutput(); err == nil {
			return nil
		}
		err = fmt.Errorf("%w: %s", err, out)
	}
	return err
}

// lastJSON is the JSON object of a script's last line.
func lastJSON(t *testing.T, out string) map[string]json.RawMessage {
	t.Helper()
	v := lastJSONOf(out)
	if v == nil {
		t.Fatalf("no JSON in %s", out)
	}
	return v
}

func lastJSONOf(out string) map[string]json.RawMessage {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var v map[string]json.RawMessage
	if json.Unmarshal([]byte(lines[len(lines)-1]), &v) != nil {
		return nil
	}
	return v
}
