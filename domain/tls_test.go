package domain_test

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/domain"
)

func TestTLSSettingsNameTheFieldThatIsWrong(t *testing.T) {
	c := milvustest.NewCerts(t)
	ca, cert, key, other := c.PEM(t, "ca.pem"), c.PEM(t, "client.pem"), c.PEM(t, "client.key"), c.PEM(t, "server.key")
	for _, tc := range []struct {
		name  string
		err   error
		field string
	}{
		{"one-way with the host's roots", domain.ClientTLS{Mode: "one_way"}.Validate("tls"), ""},
		{"one-way with a CA", domain.ClientTLS{Mode: "one_way", CAPEM: ca, ServerName: "localhost"}.Validate("tls"), ""},
		{"mutual", domain.ClientTLS{Mode: "mutual", CAPEM: ca, CertPEM: cert, KeyPEM: key}.Validate("tls"), ""},
		{"none", domain.ClientTLS{Mode: "none"}.Validate("tls"), ""},
		{"no mode", domain.ClientTLS{CAPEM: ca}.Validate("tls"), "tls.mode"},
		{"none with a CA", domain.ClientTLS{Mode: "none", CAPEM: ca}.Validate("tls"), "tls"},
		{"a CA that is not one", domain.ClientTLS{Mode: "one_way", CAPEM: "x"}.Validate("tls"), "tls.ca_pem"},
		{"mutual without a key", domain.ClientTLS{Mode: "mutual", CertPEM: cert}.Validate("tls"), "tls.client_cert_pem"},
		{"one-way with a certificate", domain.ClientTLS{Mode: "one_way", CertPEM: cert, KeyPEM: key}.Validate("tls"), "tls.client_cert_pem"},
		{"another's key", domain.ClientTLS{Mode: "mutual", CertPEM: cert, KeyPEM: other}.Validate("tls"), "tls.client_key_pem"},
		{"a proxy", domain.ServerTLS{Mode: "one_way", CertPEM: cert, KeyPEM: key}.Validate("proxy_tls"), ""},
		{"a proxy asking for certificates", domain.ServerTLS{Mode: "mutual", CertPEM: cert, KeyPEM: key, ClientCAPEM: ca}.Validate("proxy_tls"), ""},
		{"a proxy without a key", domain.ServerTLS{Mode: "one_way", CertPEM: cert}.Validate("proxy_tls"), "proxy_tls.cert_pem"},
		{"a proxy with another's key", domain.ServerTLS{Mode: "one_way", CertPEM: cert, KeyPEM: other}.Validate("proxy_tls"), "proxy_tls.key_pem"},
		{"mutual without a client CA", domain.ServerTLS{Mode: "mutual", CertPEM: cert, KeyPEM: key}.Validate("proxy_tls"), "proxy_tls.client_ca_pem"},
		{"a client CA that is not one", domain.ServerTLS{Mode: "mutual", CertPEM: cert, KeyPEM: key, ClientCAPEM: "x"}.Validate("proxy_tls"), "proxy_tls.client_ca_pem"},
		{"a proxy with an unknown mode", domain.ServerTLS{Mode: "tls", CertPEM: cert, KeyPEM: key}.Validate("proxy_tls"), "proxy_tls.mode"},
		{"too long", domain.ClientTLS{Mode: "one_way", CAPEM: strings.Repeat(ca, 200)}.Validate("tls"), "tls.ca_pem"},
	} {
		var fe *domain.ValidationError
		switch {
		case tc.field == "" && tc.err != nil:
			t.Errorf("%s: refused: %v", tc.name, tc.err)
		case tc.field != "" && (!errors.As(tc.err, &fe) || fe.Field != tc.field):
			t.Errorf("%s: %v, want an error naming %s", tc.name, tc.err, tc.field)
		}
	}
}

// A proxy asking for client certificates lets in those its client CA
// signed for clients, and the other instances of the same proxy; nobody
// else.
func TestAProxyWithMutualTLSLetsInItsClientsAndItsOtherInstances(t *testing.T) {
	c := milvustest.NewCerts(t)
	proxy := domain.ServerTLS{Mode: "mutual", CertPEM: c.PEM(t, "proxy.pem"), KeyPEM: c.PEM(t, "proxy.key"), ClientCAPEM: c.PEM(t, "ca.pem")}
	serverCfg, err := proxy.Config()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = conn.(*tls.Conn).Handshake(); conn.Close() }()
		}
	}()
	client := func(name string) *tls.Config {
		cfg, err := domain.ClientTLS{Mode: "mutual", CAPEM: c.PEM(t, "ca.pem"), ServerName: "localhost",
			CertPEM: c.PEM(t, name+".pem"), KeyPEM: c.PEM(t, name+".key")}.Config()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	oneWay, _ := domain.ClientTLS{Mode: "one_way", CAPEM: c.PEM(t, "ca.pem"), ServerName: "localhost"}.Config()
	relay, err := proxy.RelayConfig()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		in   bool
	}{
		{"a client certificate of the CA", client("client"), true},
		{"another instance of the proxy", relay, true},
		{"no certificate", oneWay, false},
		{"a server certificate of the CA", client("server"), false},
	} {
		if got := handshake(ln.Addr().String(), tc.cfg) == nil; got != tc.in {
			t.Errorf("%s: let in %v, want %v", tc.name, got, tc.in)
		}
	}
	// An instance never relays to a listener with another certificate.
	other, err := domain.ServerTLS{Mode: "one_way", CertPEM: c.PEM(t, "server.pem"), KeyPEM: c.PEM(t, "server.key")}.Config()
	if err != nil {
		t.Fatal(err)
	}
	ln2, err := tls.Listen("tcp", "127.0.0.1:0", other)
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	go func() {
		if conn, err := ln2.Accept(); err == nil {
			_ = conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	if err := handshake(ln2.Addr().String(), relay); err == nil {
		t.Fatal("a relay trusted a listener with another certificate")
	}
}

// handshake connects and reads once: TLS 1.3 tells a refused client
// certificate only after the client's handshake returned.
func handshake(addr string, cfg *tls.Config) error {
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil
	}
	if err != nil && strings.Contains(err.Error(), "EOF") {
		return nil // let in, then closed by the server
	}
	return err
}
