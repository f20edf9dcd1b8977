package apiclient_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
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
