package service_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	st "github.com/zdm-io/zdm/service/servicetest"
)

// A proxy's certificate replaced by PATCH proxy_tls is taken at the next
// handshake, and the applications' connections made before stay: a
// certificate rotated in a week-long sync cuts no one off.
func TestAProxyCertificateRotatesWithoutDroppingConnections(t *testing.T) {
	// The Milvus data plane serves the proxies; no Milvus is needed
	// until a migration starts.
	cfg := st.Config(t.TempDir())
	cfg.DataPlane = "milvus"
	s := st.Start(t, cfg)
	certs := milvustest.NewCerts(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, map[string]any{"name": "rotated", "organization": "acme", "project": "search",
		"endpoint": "127.0.0.1:1", "proxy_listen": addr,
		"proxy_tls": map[string]any{"mode": "one_way", "cert_pem": certs.PEM(t, "proxy.pem"), "key_pem": certs.PEM(t, "proxy.key")}})
	if r.Status != 201 {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(certs.PEM(t, "ca.pem")))
	// served is the certificate a fresh handshake is given ("" until the
	// proxy answers).
	served := func() []byte {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"h2"}})
		if err != nil {
			return nil
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Raw
	}
	waitServed := func(name string) {
		t.Helper()
		block, _ := pem.Decode([]byte(certs.PEM(t, name)))
		for deadline := time.Now().Add(10 * time.Second); !bytes.Equal(served(), block.Bytes); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the proxy never served %s", name)
			}
		}
	}
	waitServed("proxy.pem")

	// An application's connection, made with the first certificate.
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cc.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for s := cc.GetState(); s != connectivity.Ready; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			t.Fatalf("the application never connected: %v", s)
		}
	}
	left := make(chan connectivity.State, 1)
	watch, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go func() {
		if cc.WaitForStateChange(watch, connectivity.Ready) {
			left <- cc.GetState()
		}
	}()

	if r := s.Do(t, "PATCH", "/v1/clusters/"+id, st.OrgAdminToken, map[string]any{
		"proxy_tls": map[string]any{"mode": "one_way", "cert_pem": certs.PEM(t, "server.pem"), "key_pem": certs.PEM(t, "server.key")}}); r.Status != 200 {
		t.Fatalf("rotate: %d %s", r.Status, r.Body)
	}
	waitServed("server.pem")
	select {
	case state := <-left:
		t.Fatalf("the application's connection went %v when the certificate was rotated", state)
	case <-time.After(time.Second):
	}
}
