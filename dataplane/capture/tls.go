package capture

import (
	"crypto/tls"
	"net"

	"github.com/zdm-io/zdm/domain"
)

// TLSListener is ln speaking TLS as t says. Applications keep the
// security they had with their cluster: its certificate, and for mutual
// TLS the client certificates it asked for.
func TLSListener(ln net.Listener, t domain.ServerTLS) (net.Listener, error) {
	cfg, err := t.Config()
	if err != nil || cfg == nil {
		return ln, err
	}
	// gRPC clients require HTTP/2 to be agreed in the handshake; REST
	// clients get HTTP/1.1, and the endpoint's answer that it carries
	// gRPC only (rest.go).
	cfg.NextProtos = []string{"h2", "http/1.1"}
	return tls.NewListener(ln, cfg), nil
}

// RelayWith makes the endpoint reach the endpoints of the other instances
// with t's relay side: they listen with the same certificate.
func (e *Endpoint) RelayWith(t domain.ServerTLS) error {
	cfg, err := t.RelayConfig()
	if err != nil {
		return err
	}
	e.drivers.secureWith(func(string) (*tls.Config, error) { return cfg, nil })
	return nil
}
