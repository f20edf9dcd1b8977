package service

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	zdm "github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/eventstore"
)

// A NATS that requires TLS and client certificates, as an operator runs
// one off the zdmd hosts: zdmd reaches it with nats_tls, and without
// its certificate or its CA it is refused and says why.
func TestZdmdReachesANATSThatRequiresMutualTLS(t *testing.T) {
	certs := milvustest.NewCerts(t)
	conf := zdm.NATSConfig + fmt.Sprintf("\ntls {\n  cert_file: %q\n  key_file: %q\n  ca_file: %q\n  verify: true\n}\n",
		certs.Path("server.pem"), certs.Path("server.key"), certs.Path("ca.pem"))
	ext, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: conf, DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ext.Close)
	url := strings.Replace(ext.ClientURL(), "nats://", "tls://", 1)
	full := NATSTLS{CAFile: certs.Path("ca.pem"), CertFile: certs.Path("client.pem"), KeyFile: certs.Path("client.key")}
	for _, c := range []struct {
		name    string
		tls     NATSTLS
		refused string
	}{
		{"mutual TLS", full, ""},
		{"no client certificate", NATSTLS{CAFile: full.CAFile}, "tls"},
		{"no CA", NATSTLS{CertFile: full.CertFile, KeyFile: full.KeyFile}, "certificate"},
	} {
		cfg := Config{NATSURL: url, NATSTLS: c.tls}
		if err := cfg.NATSTLS.Validate(cfg.NATSURL); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, nc, store, err := OpenEvents(ctx, cfg, "none")
		cancel()
		if c.refused == "" {
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if _, err := store.Subjects(context.Background(), "zdm.>"); err != nil {
				t.Fatalf("%s: the store does not answer: %v", c.name, err)
			}
			nc.Close()
			continue
		}
		if err == nil {
			nc.Close()
			t.Fatalf("%s: connected", c.name)
		}
		t.Logf("%s: %v", c.name, err)
		if !strings.Contains(err.Error(), c.refused) {
			t.Errorf("%s: %v, want it to say %q", c.name, err, c.refused)
		}
	}
}

func TestNATSTLSSettingsAreCheckedAndNamed(t *testing.T) {
	certs := milvustest.NewCerts(t)
	for _, c := range []struct {
		url  string
		tls  NATSTLS
		want string
	}{
		{"", NATSTLS{CAFile: certs.Path("ca.pem")}, "nats_url (--nats-url)"},
		{"tls://n1:4222", NATSTLS{CertFile: certs.Path("client.pem")}, "--nats-tls-key"},
		{"tls://n1:4222", NATSTLS{CAFile: filepath.Join(t.TempDir(), "none.pem")}, "--nats-tls-ca"},
		{"tls://n1:4222", NATSTLS{CAFile: certs.Path("client.key")}, "--nats-tls-ca"},
		{"tls://n1:4222", NATSTLS{CertFile: certs.Path("client.pem"), KeyFile: certs.Path("server.key")}, "--nats-tls-cert"},
	} {
		err := c.tls.Validate(c.url)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want it to name %s", c.tls, err, c.want)
		}
	}
	if err := (NATSTLS{}).Validate(""); err != nil {
		t.Errorf("no TLS: %v", err)
	}
}

func TestAPasswordInTheNATSURLIsNeverShown(t *testing.T) {
	got := withoutPasswords("nats://zdm:s3cret@n1:4222,nats://n2:4222")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "zdm:xxxxx@n1:4222") || !strings.Contains(got, "nats://n2:4222") {
		t.Fatalf("shown as %s", got)
	}
}
