package apiclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm/apiclient"
)

func TestErrorsAndViewsAreDecoded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" { // public, as in zdmd
			return
		}
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/migrations/m-1":
			_, _ = w.Write([]byte(`{"id":"m-1","state":"syncing","lag_seconds":1.5,"progress":{"rows_copied":10,"rows_total":20,"collections":[{"database":"d","collection":"c","rows_copied":10,"rows_total":20}]}}`))
		default:
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"code":"invalid_field","message":"target.name is required","field":"target.name"}}`))
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c := apiclient.New(srv.URL+"/", "tok")
	if err := c.WaitReady(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	m, err := c.Migration(ctx, "m-1")
	if err != nil || m.State != "syncing" || *m.LagSeconds != 1.5 || m.Progress.Collections[0].RowsTotal != 20 {
		t.Fatalf("migration: %+v %v", m, err)
	}
	err = c.Do(ctx, "POST", "/v1/migrations", map[string]any{}, nil)
	var ae *apiclient.Error
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Field != "target.name" || ae.Code != "invalid_field" {
		t.Fatalf("error answer: %v", err)
	}
	if err := apiclient.New(srv.URL, "wrong").Do(ctx, "GET", "/v1/migrations/m-1", nil, nil); err == nil {
		t.Fatal("a refused token is not an error")
	}
}

// Events reads every page of a history, each from where the last ended,
// with the samples left out when asked, and stops at the first error.
func TestEventsReadsEveryPage(t *testing.T) {
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.RawQuery)
		switch r.URL.Query().Get("after") {
		case "5":
			_, _ = w.Write([]byte(`{"events":[{"seq":6},{"seq":7}],"more":true,"next_after":7}`))
		case "7":
			_, _ = w.Write([]byte(`{"events":[{"seq":9}],"more":false}`))
		default:
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	c := apiclient.New(srv.URL, "tok")
	var got []string
	err := c.Events(context.Background(), "m/1", 5, true, func(raw json.RawMessage) error {
		got = append(got, string(raw))
		return nil
	})
	if err != nil || strings.Join(got, " ") != `{"seq":6} {"seq":7} {"seq":9}` {
		t.Fatalf("events %v, %v", got, err)
	}
	if want := "after=5&limit=1000&steps=true after=7&limit=1000&steps=true"; strings.Join(asked, " ") != want {
		t.Fatalf("asked %v, want %s", asked, want)
	}
	stop := errors.New("enough")
	if err := c.Events(context.Background(), "m/1", 5, false, func(json.RawMessage) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("an error of each: %v", err)
	}
}

// A command is sent with a key of its own, and sent again with the same
// key when its answer was lost or the API could not take it for a moment;
// a read carries no key; a refusal and a refused connection are answered
// at once.
func TestACommandIsSentAgainWithItsKeyUntilItsAnswerArrives(t *testing.T) {
	var keys []string
	tries := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tries++
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		switch {
		case r.URL.Path == "/v1/refused":
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error":{"code":"source_busy","message":"busy"}}`))
		case tries == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"store_unavailable","message":"NATS is away"}}`))
		case tries == 2:
			// The answer is lost: the connection breaks.
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		case tries == 3:
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(`<html>bad gateway</html>`))
		default:
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"id":"c-1"}`))
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	c := apiclient.New(srv.URL, "tok")
	var out struct{ ID string }
	if err := c.Do(ctx, "POST", "/v1/clusters", map[string]any{"name": "a"}, &out); err != nil || out.ID != "c-1" {
		t.Fatalf("a command whose first three tries failed: %+v %v", out, err)
	}
	if len(keys) != 4 || keys[0] == "" || keys[1] != keys[0] || keys[2] != keys[0] || keys[3] != keys[0] {
		t.Fatalf("the keys of the tries: %q, want one key four times", keys)
	}
	keys, tries = nil, 10
	if err := c.Do(ctx, "POST", "/v1/clusters", map[string]any{"name": "b"}, nil); err != nil || len(keys) != 1 || keys[0] == "" {
		t.Fatalf("another command: %v, keys %q", err, keys)
	}
	if err := c.Do(ctx, "GET", "/v1/clusters", nil, nil); err != nil || len(keys) != 2 || keys[1] != "" {
		t.Fatalf("a read: %v, keys %q", err, keys)
	}
	var ae *apiclient.Error
	if err := c.Do(ctx, "POST", "/v1/refused", nil, nil); !errors.As(err, &ae) || ae.Code != "source_busy" || len(keys) != 3 {
		t.Fatalf("a refusal: %v after %d tries", err, len(keys)-2)
	}
	began := time.Now()
	if err := apiclient.New("http://127.0.0.1:1", "tok").Do(ctx, "POST", "/v1/clusters", nil, nil); err == nil || time.Since(began) > time.Second {
		t.Fatalf("a refused connection: %v after %s", err, time.Since(began))
	}
}
