// Package servicetest runs a whole zdmd in-process for tests: embedded
// JetStream on a temporary directory, projections, saga and the HTTP API on
// a loopback port.
package servicetest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/zdm-io/zdm/service"
)

// Tokens used by Config: one principal of each kind.
const (
	AdminToken        = "admin-token"
	OrgAdminToken     = "acme-org-admin"
	ProjectAdminToken = "acme-search-admin"
	ViewerToken       = "acme-viewer"
	OtherOrgToken     = "globex-org-admin"
	MetricsToken      = "prometheus-scrape"
)

// Config is a simulated-data-plane configuration with fast steps and the
// tokens above.
func Config(dataDir string) service.Config {
	cfg := service.DefaultConfig()
	cfg.DataDir, cfg.NATSListen, cfg.DataPlane = dataDir, "none", "simulated"
	cfg.Organizations = []service.Organization{{Name: "acme", Projects: []string{"search", "ads"}}, {Name: "globex", Projects: []string{"web"}}}
	cfg.Tokens = []service.TokenConfig{
		{User: "olga", Role: "org_admin", Organization: "acme", Token: OrgAdminToken},
		{User: "pete", Role: "project_admin", Organization: "acme", Projects: []string{"search"}, Token: ProjectAdminToken},
		{User: "vera", Role: "viewer", Organization: "acme", Token: ViewerToken},
		{User: "gary", Role: "org_admin", Organization: "globex", Token: OtherOrgToken},
		{User: "prometheus", Role: "metrics", Token: MetricsToken},
	}
	cfg.Simulated = service.SimulatedShape{RangeDelay: 20 * time.Millisecond, LagStart: 40, LagStep: 50 * time.Millisecond}
	cfg.Saga = service.SagaConfig{LagRecordInterval: 100 * time.Millisecond, Tick: 20 * time.Millisecond, RetryBackoff: 20 * time.Millisecond}
	return cfg
}

// Server is a running zdmd.
type Server struct {
	*service.Main
	URL    string
	cancel context.CancelFunc
	done   chan error
}

// Start runs zdmd with cfg until the test ends (or Stop).
func Start(t testing.TB, cfg service.Config) *Server {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("ZDM_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	m, err := service.NewMain(ctx, cfg, AdminToken, logger)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		m.Close()
		t.Fatal(err)
	}
	s := &Server{Main: m, URL: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- m.Run(ctx, ln) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			s.Stop()
			t.Fatalf("zdmd not ready: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(s.Stop)
	return s
}

// Stop shuts zdmd down and waits for it.
func (s *Server) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
	s.Main.Close()
	s.cancel = nil
}

// Response is an HTTP answer.
type Response struct {
	Status int
	Body   []byte
}

// JSON decodes the body.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("body is not JSON (%v): %s", err, r.Body)
	}
	return out
}

// ErrorCode returns error.code of an error body.
func (r Response) ErrorCode(t testing.TB) string {
	t.Helper()
	e, _ := r.JSON(t)["error"].(map[string]any)
	if e == nil {
		t.Fatalf("no error object in %s", r.Body)
	}
	if _, ok := e["message"].(string); !ok {
		t.Fatalf("error without message: %s", r.Body)
	}
	code, _ := e["code"].(string)
	return code
}

// ErrorField returns error.field of an error body.
func (r Response) ErrorField(t testing.TB) string {
	t.Helper()
	e, _ := r.JSON(t)["error"].(map[string]any)
	f, _ := e["field"].(string)
	return f
}

// Do sends a request with a bearer token ("" for none); body may be a
// string (sent as is) or a value (sent as JSON).
func (s *Server) Do(t testing.TB, method, path, token string, body any) Response {
	t.Helper()
	return s.DoKeyed(t, method, path, token, "", body)
}

// DoKeyed is Do with an Idempotency-Key ("" for none). Every answer is
// checked against the OpenAPI document.
func (s *Server) DoKeyed(t testing.TB, method, path, token, key string, body any) Response {
	t.Helper()
	h := http.Header{}
	if key != "" {
		h.Set("Idempotency-Key", key)
	}
	return s.DoHeaders(t, method, path, token, h, body)
}

// DoHeaders is Do with more headers, sent as given (an empty value too).
func (s *Server) DoHeaders(t testing.TB, method, path, token string, h http.Header, body any) Response {
	t.Helper()
	var sent []byte
	switch b := body.(type) {
	case nil:
	case string:
		sent = []byte(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		sent = data
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(sent)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	conforms(t, req, sent, resp, data)
	return Response{Status: resp.StatusCode, Body: data}
}

// WaitState polls a migration until it reaches state or the timeout passes.
func (s *Server) WaitState(t testing.TB, id, state string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last map[string]any
	for time.Now().Before(deadline) {
		r := s.Do(t, "GET", "/v1/migrations/"+id, AdminToken, nil)
		if r.Status == 200 {
			last = r.JSON(t)
			if last["state"] == state {
				return last
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("migration %s did not reach %s within %s; last: %v", id, state, timeout, last)
	return nil
}
