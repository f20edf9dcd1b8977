package capture

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
)

// A client of Milvus's RESTful API that reaches the proxy gets an answer
// that says the proxy carries gRPC only, in plain text and over TLS; gRPC
// calls on the same port are captured as before.
func TestARESTCallIsToldTheProxyCarriesGRPCOnly(t *testing.T) {
	certs := milvustest.NewCerts(t)
	for _, secure := range []bool{false, true} {
		name := "plain"
		if secure {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			c, _ := armedCapture(t)
			e := NewEndpoint("src", func() string { return "" }, nil)
			var mu sync.Mutex
			var refused []string
			e.CountRefusals(func(m string) { mu.Lock(); refused = append(refused, m); mu.Unlock() })
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			scheme, grpcCreds, httpTLS := "http", insecure.NewCredentials(), (*tls.Config)(nil)
			if secure {
				ln = proxyCerts(t, certs).Listener(ln)
				pool := x509.NewCertPool()
				pool.AppendCertsFromPEM([]byte(certs.PEM(t, "ca.pem")))
				httpTLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
				scheme, grpcCreds = "https", credentials.NewTLS(httpTLS.Clone())
			}
			go func() { _ = e.Serve(ln) }()
			t.Cleanup(e.Stop)
			e.Drive(NewProxy("src", func() string { return fakeMilvus(t) }, c, nil))

			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: httpTLS}}
			resp, err := client.Post(scheme+"://"+addr+"/v1/vector/insert", "application/json",
				strings.NewReader(`{"collectionName":"c","data":[{"id":1,"vector":[0.1,0.2]}]}`))
			if err != nil {
				t.Fatalf("a REST call got no answer: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var answer struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if resp.StatusCode != http.StatusNotImplemented || json.Unmarshal(body, &answer) != nil ||
				answer.Code != http.StatusNotImplemented || !strings.Contains(answer.Message, "gRPC") {
				t.Fatalf("REST insert: HTTP %d %s", resp.StatusCode, body)
			}
			mu.Lock()
			if len(refused) != 1 || refused[0] != "REST" {
				t.Errorf("refusals counted: %v, want [REST]", refused)
			}
			mu.Unlock()

			cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(grpcCreds))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, out := upsertOf(t, 5), []byte(nil)
			if err := cc.Invoke(ctx, upsertMethod, &req, &out, grpc.ForceCodecV2(upstreamCodec{})); err != nil {
				t.Fatalf("a gRPC call on the port that answered REST: %v", err)
			}
			if n := len(journaledIn(t, c)); n != 1 {
				t.Fatalf("journaled %d writes, want the gRPC upsert", n)
			}
		})
	}
}

// A connection that sends nothing, or goes away at once, is closed
// without holding up the others.
func TestASilentConnectionDoesNotHoldUpTheProxy(t *testing.T) {
	e := NewEndpoint("src", func() string { return "" }, nil)
	addr := serveEndpoint(t, e)
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	gone, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	gone.Close()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/v1/vector/collections")
	if err != nil {
		t.Fatalf("a REST call behind a silent connection: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
}

// With a gate, a REST call over the proxy's TLS becomes a gRPC call to
// the endpoint itself, captured as a client's: the gate here sends an
// upsert for each call, and each is journaled. Calls the gate does not
// carry are still refused, saying which ones are carried.
func TestARESTCallThroughTheGateIsCapturedOverTLS(t *testing.T) {
	certs := milvustest.NewCerts(t)
	c, _ := armedCapture(t)
	e := NewEndpoint("src", func() string { return "" }, nil)
	e.CarryREST(func(cc *grpc.ClientConn, notCarried http.Handler) http.Handler {
		mux := http.NewServeMux()
		mux.HandleFunc("POST /v1/vector/upsert", func(w http.ResponseWriter, r *http.Request) {
			req, out := upsertOf(t, 9), []byte(nil)
			if err := cc.Invoke(r.Context(), upsertMethod, &req, &out, grpc.ForceCodecV2(upstreamCodec{})); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			_, _ = w.Write([]byte(`{"code":200,"data":{}}`))
		})
		mux.Handle("/", notCarried)
		return mux
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln = proxyCerts(t, certs).Listener(ln)
	go func() { _ = e.Serve(ln) }()
	t.Cleanup(e.Stop)
	e.Drive(NewProxy("src", func() string { return fakeMilvus(t) }, c, nil))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(certs.PEM(t, "ca.pem")))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}}
	for _, c := range []struct {
		path string
		code int
		says string
	}{{"/v1/vector/upsert", http.StatusOK, `"code":200`}, {"/v2/vectordb/entities/upsert", http.StatusNotImplemented, "/v1/vector calls"}} {
		resp, err := client.Post("https://"+addr+c.path, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(string(body), c.says) {
			t.Errorf("%s: HTTP %d %s", c.path, resp.StatusCode, body)
		}
	}
	if n := len(journaledIn(t, c)); n != 1 {
		t.Fatalf("journaled %d writes, want the REST upsert", n)
	}
}
