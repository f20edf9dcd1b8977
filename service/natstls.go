package service

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/zdm-io/zdm/domain"
)

// NATSTLS secures the connections to an external NATS (nats_url): the CA
// its servers' certificates chain to, and this zdmd's certificate and key
// for servers that verify their clients.
type NATSTLS struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

func (t NATSTLS) set() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// Validate names the first setting that is missing or cannot be used.
func (t NATSTLS) Validate(natsURL string) error {
	if !t.set() {
		return nil
	}
	if natsURL == "" {
		return errors.New("config: nats_tls (--nats-tls-*) secures an external NATS; set nats_url (--nats-url) too, or leave it out for the embedded one")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return errors.New("config: nats_tls.cert_file (--nats-tls-cert) and nats_tls.key_file (--nats-tls-key) go together")
	}
	_, err := t.config()
	return err
}

// config is the TLS configuration for the NATS connections, built as a
// cluster's is from the files' PEM; errors name the setting.
func (t NATSTLS) config() (*tls.Config, error) {
	c := domain.ClientTLS{Mode: domain.TLSOneWay}
	if t.CertFile != "" {
		c.Mode = domain.TLSMutual
	}
	for _, f := range []struct {
		path, setting string
		dst           *string
	}{{t.CAFile, "nats_tls.ca_file (--nats-tls-ca)", &c.CAPEM}, {t.CertFile, "nats_tls.cert_file (--nats-tls-cert)", &c.CertPEM},
		{t.KeyFile, "nats_tls.key_file (--nats-tls-key)", &c.KeyPEM}} {
		if f.path == "" {
			continue
		}
		pem, err := os.ReadFile(f.path)
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", f.setting, err)
		}
		*f.dst = string(pem)
	}
	cfg, err := c.Config()
	var invalid *domain.ValidationError
	if errors.As(err, &invalid) {
		setting := "nats_tls.ca_file (--nats-tls-ca) " + t.CAFile
		if invalid.Field != "tls.ca_pem" {
			setting = "nats_tls.cert_file and key_file (--nats-tls-cert, --nats-tls-key): the key"
		}
		return nil, fmt.Errorf("config: %s %s", setting, strings.Replace(invalid.Message, "client_cert_pem", "the certificate", 1))
	}
	return cfg, err
}

// natsOptions are the options every connection to NATS at natsURL takes
// beyond its name: TLS when it is set.
func natsOptions(t NATSTLS) ([]nats.Option, error) {
	if !t.set() {
		return nil, nil
	}
	cfg, err := t.config()
	if err != nil {
		return nil, err
	}
	return []nats.Option{nats.Secure(cfg)}, nil
}

// withoutPasswords is a NATS server list as it may be logged: a user's
// password in a URL is masked.
func withoutPasswords(servers string) string {
	list := strings.Split(servers, ",")
	for i, s := range list {
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil {
			list[i] = u.Redacted()
		}
	}
	return strings.Join(list, ",")
}
