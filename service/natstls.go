package service

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
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

// config is the TLS configuration for the NATS connections; errors name
// the setting.
func (t NATSTLS) config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("config: nats_tls.ca_file (--nats-tls-ca): %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("config: nats_tls.ca_file (--nats-tls-ca) %s holds no PEM certificate", t.CAFile)
		}
	}
	if t.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("config: nats_tls.cert_file and key_file (--nats-tls-cert, --nats-tls-key): %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
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
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil || u.User == nil {
			continue
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			list[i] = u.String()
		}
	}
	return strings.Join(list, ",")
}
