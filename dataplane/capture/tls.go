package capture

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync/atomic"

	"github.com/zdm-io/zdm/domain"
)

// ServerCerts is a proxy's TLS: its listener's side and the side one zdmd
// relays to another's listener with. A rotation takes effect at the next
// handshake: the connections already made, the applications' and the
// relays', keep theirs and go on.
type ServerCerts struct{ current atomic.Pointer[certSet] }

type certSet struct{ server, relay *tls.Config }

// NewServerCerts returns t's certificates (t's mode is not none).
func NewServerCerts(t domain.ServerTLS) (*ServerCerts, error) {
	s := &ServerCerts{}
	return s, s.Rotate(t)
}

// Rotate makes the handshakes from now on use t.
func (s *ServerCerts) Rotate(t domain.ServerTLS) error {
	server, err := t.Config()
	if err != nil {
		return err
	}
	relay, err := t.RelayConfig()
	if err != nil {
		return err
	}
	if server == nil || relay == nil {
		return errors.New("proxy_tls: mode none has no certificates")
	}
	// gRPC clients require HTTP/2 to be agreed in the handshake; REST
	// clients get HTTP/1.1, and the endpoint's answer that it carries
	// gRPC only (rest.go).
	server.NextProtos = []string{"h2", "http/1.1"}
	s.current.Store(&certSet{server: server, relay: relay})
	return nil
}

// Listener is ln speaking TLS with the certificates current at each
// handshake. Applications keep the security they had with their cluster:
// its certificate, and for mutual TLS the client certificates it asked
// for.
func (s *ServerCerts) Listener(ln net.Listener) net.Listener {
	return tls.NewListener(ln, &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return s.current.Load().server, nil }})
}

// relayConfig is the client side of a relay, as current at each
// handshake: a connection to another instance made before a rotation
// presents and trusts the new certificate when it connects again.
func (s *ServerCerts) relayConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12,
		// The name is not checked: the certificate is compared whole.
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &s.current.Load().relay.Certificates[0], nil
		},
		VerifyPeerCertificate: func(raw [][]byte, chains [][]*x509.Certificate) error {
			return s.current.Load().relay.VerifyPeerCertificate(raw, chains)
		},
	}
}

// RelayWith makes the endpoint reach the endpoints of the other instances
// with s's relay side: they listen with the same certificate.
func (e *Endpoint) RelayWith(s *ServerCerts) {
	cfg := s.relayConfig()
	e.drivers.secureWith(func(string) (*tls.Config, error) { return cfg, nil })
}
