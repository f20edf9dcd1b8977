package haproxy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zdm-io/zdm/adapters/haproxy"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
)

// The operator guide shows the configuration the tests run.
func TestTheOperatorGuideShowsTheConfigurationTheTestsRun(t *testing.T) {
	guide, err := os.ReadFile("../../docs/operator-guide.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "# /etc/haproxy/haproxy.cfg (HAProxy 2.6, Debian's package)\n"
	_, block, ok := strings.Cut(string(guide), marker)
	if !ok {
		t.Fatal("the operator guide shows no haproxy.cfg")
	}
	block, _, _ = strings.Cut(block, "```")
	want := haproxy.Config(":19530", []string{"zdmd-1:19540", "zdmd-2:19540", "zdmd-3:19540"})
	if block != want {
		t.Fatalf("the guide shows\n%s\nthe tests run\n%s", block, want)
	}
}

// A server HAProxy finds gone is among its state changes.
func TestAServerMarkedDownIsAStateChange(t *testing.T) {
	backend := listen(t)
	p, _ := start(t, nil, backend)
	backend.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if changes := p.StateChanges(); len(changes) > 0 {
			if !strings.Contains(changes[0], "zdm/zdmd-1 is DOWN") {
				t.Fatalf("the first state change: %q", changes[0])
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no state change within 10 s of the server's loss")
		}
	}
}

// A server whose process is stopped still has its connections accepted
// by the kernel: a listener that never accepts behaves the same. HAProxy
// marks it down, since it never answers the check's HTTP/2 greeting, and
// every new client then reaches the live server; the live one, which
// answers, stays up. Once it answers again it is marked up. With proxy
// TLS, one-way or mutual, the check speaks TLS as the guide says.
func TestAServerThatAcceptsButNeverAnswersIsMarkedDown(t *testing.T) {
	certs := milvustest.NewCerts(t)
	ca := x509.NewCertPool()
	ca.AppendCertsFromPEM([]byte(certs.PEM(t, "ca.pem")))
	serverCert, err := tls.LoadX509KeyPair(certs.Path("server.pem"), certs.Path("server.key"))
	if err != nil {
		t.Fatal(err)
	}
	clientCert, err := tls.LoadX509KeyPair(certs.Path("client.pem"), certs.Path("client.key"))
	if err != nil {
		t.Fatal(err)
	}
	// HAProxy's crt takes the certificate and its key in one file.
	checkCert := filepath.Join(t.TempDir(), "check.pem")
	if err := os.WriteFile(checkCert, []byte(certs.PEM(t, "client.pem")+certs.PEM(t, "client.key")), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		// check is what the guide says to add to default-server.
		check          string
		server, client credentials.TransportCredentials
	}{
		{"plain", "", insecure.NewCredentials(), insecure.NewCredentials()},
		{"tls", "check-ssl check-alpn h2 verify none",
			credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{serverCert}}),
			credentials.NewTLS(&tls.Config{RootCAs: ca, ServerName: "localhost"})},
		{"mutual tls", "check-ssl check-alpn h2 verify none crt " + checkCert,
			credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca}),
			credentials.NewTLS(&tls.Config{RootCAs: ca, ServerName: "localhost", Certificates: []tls.Certificate{clientCert}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serve := func(ln net.Listener) {
				s := grpc.NewServer(grpc.Creds(tc.server))
				healthpb.RegisterHealthServer(s, health.NewServer())
				go func() { _ = s.Serve(ln) }()
				t.Cleanup(s.Stop)
			}
			live, frozen := listen(t), listen(t)
			serve(live)
			p, frontend := start(t, func(cfg string) string {
				return strings.Replace(cfg, "default-server ", "default-server "+tc.check+" ", 1)
			}, live, frozen)
			waitFor := func(what string) {
				t.Helper()
				for deadline := time.Now().Add(10 * time.Second); !slices.ContainsFunc(p.StateChanges(), func(l string) bool { return strings.Contains(l, what) }); time.Sleep(50 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("HAProxy did not log %q within 10 s; its state changes: %q", what, p.StateChanges())
					}
				}
			}
			waitFor("zdm/zdmd-2 is DOWN")
			// Each call on a connection of its own: round robin would
			// send every other one to the frozen server if it were up.
			for i := range 6 {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				cc, err := grpc.NewClient(frontend, grpc.WithTransportCredentials(tc.client))
				if err != nil {
					t.Fatal(err)
				}
				_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
				cc.Close()
				cancel()
				if err != nil {
					t.Fatalf("call %d through HAProxy: %v", i+1, err)
				}
			}
			serve(frozen) // it wakes
			waitFor("zdm/zdmd-2 is UP")
			for _, l := range p.StateChanges() {
				if strings.Contains(l, "zdm/zdmd-1 is DOWN") {
					t.Errorf("the server that answers was marked down: %s", l)
				}
			}
		})
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// start runs HAProxy in front of backends, with Config as edit (if not
// nil) leaves it, stopped at the test's end, and returns its frontend's
// address.
func start(t *testing.T, edit func(string) string, backends ...net.Listener) (*haproxy.Process, string) {
	t.Helper()
	bin := haproxy.Path()
	if bin == "" {
		milvustest.Missing(t, "haproxy is missing: scripts/haproxy.sh installs it")
	}
	front := listen(t)
	frontend := front.Addr().String()
	front.Close()
	var addrs []string
	for _, b := range backends {
		addrs = append(addrs, b.Addr().String())
	}
	cfg := haproxy.Config(frontend, addrs)
	if edit != nil {
		cfg = edit(cfg)
	}
	p, err := haproxy.StartConfig(context.Background(), bin, t.TempDir(), frontend, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p, frontend
}
