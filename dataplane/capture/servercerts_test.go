package capture

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/domain"
)

// serveTLS serves e over certs on addr until the test ends.
func serveTLS(t *testing.T, e *Endpoint, certs *ServerCerts, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.Serve(certs.Listener(ln)) }()
	t.Cleanup(e.Stop)
	return ln.Addr().String()
}

// proxyCerts is the one-way TLS of a proxy with certs's proxy.pem.
func proxyCerts(t *testing.T, certs milvustest.Certs) *ServerCerts {
	t.Helper()
	c, err := NewServerCerts(domain.ServerTLS{Mode: domain.TLSOneWay, CertPEM: certs.PEM(t, "proxy.pem"), KeyPEM: certs.PEM(t, "proxy.key")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// search sends a search to addr in plain text and waits up to wait.
func search(t *testing.T, addr string, wait time.Duration) error {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, resp := []byte{}, []byte(nil)
	return cc.Invoke(ctx, searchMethod, &req, &resp, grpc.ForceCodecV2(upstreamCodec{}))
}

// A rotated proxy certificate is the one each instance presents and
// trusts when it connects to another again: a relay connection made
// before the rotation reconnects with it, and one left with the old
// certificate is refused.
func TestRelaysReconnectWithTheRotatedCertificate(t *testing.T) {
	certs := milvustest.NewCerts(t)
	pair := func(name string) domain.ServerTLS {
		return domain.ServerTLS{Mode: domain.TLSOneWay, CertPEM: certs.PEM(t, name+".pem"), KeyPEM: certs.PEM(t, name+".key")}
	}
	upstream := fakeMilvus(t)
	capA, _ := armedCapture(t)
	drive := func(addr string, c *ServerCerts) string {
		e := NewEndpoint("src", func() string { return "" }, nil)
		addr = serveTLS(t, e, c, addr)
		e.Drive(NewProxy("src", func() string { return upstream }, capA, nil))
		return addr
	}
	driverCerts, relayCerts, staleCerts := proxyCerts(t, certs), proxyCerts(t, certs), proxyCerts(t, certs)
	driver := NewEndpoint("src", func() string { return "" }, nil)
	driverAddr := serveTLS(t, driver, driverCerts, "127.0.0.1:0")
	driver.Drive(NewProxy("src", func() string { return upstream }, capA, nil))
	relay := NewEndpoint("src", func() string { return driverAddr }, nil)
	relay.RelayWith(relayCerts)
	relayAddr := serveEndpoint(t, relay)
	stale := NewEndpoint("src", func() string { return driverAddr }, nil)
	stale.RelayWith(staleCerts)
	staleAddr := serveEndpoint(t, stale)
	for _, addr := range []string{relayAddr, staleAddr} {
		if err := search(t, addr, 5*time.Second); err != nil {
			t.Fatalf("relayed before the rotation: %v", err)
		}
	}

	// Every instance but the stale one takes the new certificate; the
	// driving one restarts, so the relays connect again.
	if err := driverCerts.Rotate(pair("server")); err != nil {
		t.Fatal(err)
	}
	if err := relayCerts.Rotate(pair("server")); err != nil {
		t.Fatal(err)
	}
	driver.Stop()
	drive(driverAddr, driverCerts)
	if err := search(t, relayAddr, 8*time.Second); err != nil {
		t.Fatalf("relayed after the rotation: %v", err)
	}
	if err := search(t, staleAddr, 2*time.Second); err == nil {
		t.Fatal("an instance with the old certificate relayed to one with the new")
	}
}
