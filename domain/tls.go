package domain

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// TLS modes of a connection to a cluster (ClientTLS) or of a proxy's
// listener (ServerTLS). The registry shows only the mode; certificates and
// keys are sealed with the credentials.
const (
	TLSNone   = "none"
	TLSOneWay = "one_way"
	TLSMutual = "mutual"
)

// maxPEM bounds one certificate or key field: a chain of a few
// certificates fits many times over.
const maxPEM = 64 << 10

// ClientTLS is how zdm reaches a cluster that speaks TLS: the server's CA
// (none: this host's roots) and the name its certificate carries, and for
// mutual TLS the certificate and key zdm presents.
type ClientTLS struct {
	Mode       string `json:"mode"`
	ServerName string `json:"server_name,omitempty"`
	CAPEM      string `json:"ca_pem,omitempty"`
	CertPEM    string `json:"client_cert_pem,omitempty"`
	KeyPEM     string `json:"client_key_pem,omitempty"`
}

// Validate names the first field of t that is wrong; field is where t sits
// in the request ("tls").
func (t ClientTLS) Validate(field string) error {
	switch t.Mode {
	case TLSNone:
		if t != (ClientTLS{Mode: TLSNone}) {
			return FieldError(field, `with mode "none" takes no other field`)
		}
		return nil
	case TLSOneWay:
		if t.CertPEM != "" || t.KeyPEM != "" {
			return FieldError(field+".client_cert_pem", `is for mode "mutual"`)
		}
	case TLSMutual:
		if t.CertPEM == "" || t.KeyPEM == "" {
			return FieldError(field+".client_cert_pem", `and client_key_pem are required with mode "mutual"`)
		}
	default:
		return FieldError(field+".mode", `must be "one_way", "mutual" or "none"`)
	}
	for _, f := range []struct{ name, v string }{{"server_name", t.ServerName}, {"ca_pem", t.CAPEM}, {"client_cert_pem", t.CertPEM}, {"client_key_pem", t.KeyPEM}} {
		if LongerThan(f.v, maxPEM) {
			return FieldError(field+"."+f.name, fmt.Sprintf("must be at most %d characters", maxPEM))
		}
	}
	_, err := t.Config()
	return err
}

// Config is the client side of t (nil for mode "none").
func (t ClientTLS) Config() (*tls.Config, error) {
	if t.Mode == TLSNone || t.Mode == "" {
		return nil, nil
	}
	c := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	if t.CAPEM != "" {
		pool, err := certPool(t.CAPEM)
		if err != nil {
			return nil, FieldError("tls.ca_pem", err.Error())
		}
		c.RootCAs = pool
	}
	if t.Mode == TLSMutual {
		pair, err := tls.X509KeyPair([]byte(t.CertPEM), []byte(t.KeyPEM))
		if err != nil {
			return nil, FieldError("tls.client_key_pem", "does not go with client_cert_pem: "+err.Error())
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// ServerTLS is a proxy's TLS listener: its certificate and key, and for
// mutual TLS the CA that signs the certificates its clients must present.
type ServerTLS struct {
	Mode        string `json:"mode"`
	CertPEM     string `json:"cert_pem,omitempty"`
	KeyPEM      string `json:"key_pem,omitempty"`
	ClientCAPEM string `json:"client_ca_pem,omitempty"`
}

// Validate names the first field of t that is wrong; field is where t sits
// in the request ("proxy_tls").
func (t ServerTLS) Validate(field string) error {
	switch t.Mode {
	case TLSNone:
		if t != (ServerTLS{Mode: TLSNone}) {
			return FieldError(field, `with mode "none" takes no other field`)
		}
		return nil
	case TLSOneWay:
		if t.ClientCAPEM != "" {
			return FieldError(field+".client_ca_pem", `is for mode "mutual"`)
		}
	case TLSMutual:
		if t.ClientCAPEM == "" {
			return FieldError(field+".client_ca_pem", `is required with mode "mutual"`)
		}
	default:
		return FieldError(field+".mode", `must be "one_way", "mutual" or "none"`)
	}
	if t.CertPEM == "" || t.KeyPEM == "" {
		return FieldError(field+".cert_pem", "and key_pem are required")
	}
	for _, f := range []struct{ name, v string }{{"cert_pem", t.CertPEM}, {"key_pem", t.KeyPEM}, {"client_ca_pem", t.ClientCAPEM}} {
		if LongerThan(f.v, maxPEM) {
			return FieldError(field+"."+f.name, fmt.Sprintf("must be at most %d characters", maxPEM))
		}
	}
	if _, err := t.pair(); err != nil {
		return FieldError(field+".key_pem", "does not go with cert_pem: "+err.Error())
	}
	if t.ClientCAPEM != "" {
		if _, err := certPool(t.ClientCAPEM); err != nil {
			return FieldError(field+".client_ca_pem", err.Error())
		}
	}
	return nil
}

// Config is the listener's side of t (nil for mode "none"). Every zdmd of
// a cluster's proxy holds the same certificate, and one relays calls to
// another: a peer presenting that very certificate is one of them, and is
// let in whatever the client CA.
func (t ServerTLS) Config() (*tls.Config, error) {
	if t.Mode == TLSNone || t.Mode == "" {
		return nil, nil
	}
	pair, err := t.pair()
	if err != nil {
		return nil, fmt.Errorf("proxy_tls: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if t.Mode != TLSMutual {
		return c, nil
	}
	pool, err := certPool(t.ClientCAPEM)
	if err != nil {
		return nil, fmt.Errorf("proxy_tls.client_ca_pem: %w", err)
	}
	own := pair.Certificate[0]
	c.ClientAuth = tls.RequireAnyClientCert
	c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		if bytes.Equal(raw[0], own) {
			return nil
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, b := range raw {
			if certs[i], err = x509.ParseCertificate(b); err != nil {
				return fmt.Errorf("client certificate: %w", err)
			}
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		return err
	}
	return c, nil
}

// RelayConfig is how one zdmd reaches another's listener of the same
// proxy: it trusts exactly the proxy's certificate, and presents it.
func (t ServerTLS) RelayConfig() (*tls.Config, error) {
	if t.Mode == TLSNone || t.Mode == "" {
		return nil, nil
	}
	pair, err := t.pair()
	if err != nil {
		return nil, fmt.Errorf("proxy_tls: %w", err)
	}
	own := pair.Certificate[0]
	return &tls.Config{
		Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12,
		// The name is not checked: the certificate is compared whole.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], own) {
				return errors.New("the peer is not this proxy: its certificate differs")
			}
			return nil
		},
	}, nil
}

// pair is the listener's certificate with its key.
func (t ServerTLS) pair() (tls.Certificate, error) {
	return tls.X509KeyPair([]byte(t.CertPEM), []byte(t.KeyPEM))
}

func certPool(pemText string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(pemText)) {
		return nil, errors.New("holds no PEM certificate")
	}
	return pool, nil
}
