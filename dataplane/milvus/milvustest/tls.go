package milvustest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zdm-io/zdm/eventstore/natscluster"
)

// Certs is a CA and certificates it signed, for "localhost" and
// 127.0.0.1, written as PEM files in Dir: ca.pem, server.pem and
// server.key (what a Milvus server started WithTLS reads), proxy.pem and
// proxy.key (another server's), client.pem and client.key, node.pem and
// node.key (a server that also dials its peers, as a NATS cluster's nodes
// do: server and client authentication both).
type Certs struct {
	Dir string
}

// NATSCluster is what a NATS cluster started by natscluster.StartTLS
// speaks TLS with: node.pem for its nodes, client.pem for its clients.
func (c Certs) NATSCluster() natscluster.TLS {
	return natscluster.TLS{CA: c.Path("ca.pem"), Cert: c.Path("node.pem"), Key: c.Path("node.key"),
		ClientCert: c.Path("client.pem"), ClientKey: c.Path("client.key")}
}

// Path is the file name's path.
func (c Certs) Path(name string) string { return filepath.Join(c.Dir, name) }

// PEM is the content of a file.
func (c Certs) PEM(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(c.Path(name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// NewCerts makes a CA and its certificates for the test.
func NewCerts(t testing.TB) Certs {
	t.Helper()
	c := Certs{Dir: t.TempDir()}
	caKey, caDER := issue(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "zdm test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	c.write(t, "ca.pem", "CERTIFICATE", caDER)
	server, client := x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth
	for _, leaf := range []struct {
		name  string
		usage []x509.ExtKeyUsage
	}{{"server", []x509.ExtKeyUsage{server}}, {"proxy", []x509.ExtKeyUsage{server}}, {"client", []x509.ExtKeyUsage{client}}, {"node", []x509.ExtKeyUsage{server, client}}} {
		key, der := issue(t, &x509.Certificate{
			Subject: pkix.Name{CommonName: leaf.name}, DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: leaf.usage,
		}, ca, caKey)
		c.write(t, leaf.name+".pem", "CERTIFICATE", der)
		pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		c.write(t, leaf.name+".key", "PRIVATE KEY", pkcs8)
	}
	return c
}

// issue makes a key and a certificate for it from tmpl, signed by parent
// (itself when nil).
func issue(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = serial, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func (c Certs) write(t testing.TB, name, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(c.Path(name), pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// WithTLS starts a Milvus server of the test's own, named name, on the 12
// ports from basePort, speaking TLS with the certificates of certs: one-way
// (mutual false) or asking for a client certificate signed by their CA.
// It returns its endpoint, and is stopped, its data removed, when the test
// ends.
func (b Bed) WithTLS(t testing.TB, name string, basePort int, certs Certs, mutual bool) string {
	t.Helper()
	mode := "1"
	if mutual {
		mode = "2"
	}
	return b.startOwn(t, name, basePort, "--tls-dir", certs.Dir, "--tls-mode", mode)
}
