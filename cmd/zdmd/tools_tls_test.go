package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
)

// zdmd seed, load and verify reach servers that speak TLS with their
// --NAME-tls-* flags; a wrong file is told by its flag.
func TestTheDataToolsReachServersOverTLS(t *testing.T) {
	certs := milvustest.NewCerts(t)
	parse := func(args ...string) (tlsOn, mutual bool, err error) {
		fs := newFlags("verify")
		source := endpointFlags(fs, "source", "ZDM_SOURCE_PASSWORD")
		if err := fs.Parse(append([]string{"--source", "127.0.0.1:19530"}, args...)); err != nil {
			t.Fatal(err)
		}
		ep, err := source()
		return ep.TLS != nil, ep.TLS != nil && len(ep.TLS.Certificates) == 1, err
	}
	if on, _, err := parse(); on || err != nil {
		t.Fatalf("no TLS flag: TLS %v, %v", on, err)
	}
	if on, mutual, err := parse("--source-tls-ca", certs.Path("ca.pem"), "--source-tls-server-name", "localhost"); !on || mutual || err != nil {
		t.Fatalf("one-way: TLS %v, mutual %v, %v", on, mutual, err)
	}
	if on, mutual, err := parse("--source-tls-ca", certs.Path("ca.pem"), "--source-tls-cert", certs.Path("client.pem"), "--source-tls-key", certs.Path("client.key")); !on || !mutual || err != nil {
		t.Fatalf("mutual: TLS %v, mutual %v, %v", on, mutual, err)
	}
	junk := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(junk, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	for flag, path := range map[string]string{"--source-tls-ca": junk, "--source-tls-key": certs.Path("server.key")} {
		args := []string{flag, path}
		if flag == "--source-tls-key" {
			args = append(args, "--source-tls-cert", certs.Path("client.pem"))
		}
		if _, _, err := parse(args...); err == nil || !strings.HasPrefix(err.Error(), flag+":") {
			t.Errorf("%s %s: %v, want an error naming the flag", flag, path, err)
		}
	}
}
