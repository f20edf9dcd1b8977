package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

// cluster update sends only what its flags give, as a PATCH.
func TestClusterUpdateSendsOnlyTheSettingsGiven(t *testing.T) {
	var method, path string
	var body map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, path = r.Method, r.URL.Path
		data, _ := io.ReadAll(r.Body)
		body = nil
		_ = json.Unmarshal(data, &body)
		_, _ = w.Write([]byte(`{"id":"c-1","status":"Running"}`))
	}))
	defer srv.Close()
	t.Setenv("ZDM_CLUSTER_PASSWORD", "s3cret")
	for _, c := range []struct {
		args []string
		want map[string]any
	}{
		{[]string{"--proxy-listen", ""}, map[string]any{"proxy_listen": ""}},
		{[]string{"--spare=false", "--endpoint", "h:19530"}, map[string]any{"spare": false, "endpoint": "h:19530"}},
		{[]string{"--password"}, map[string]any{"password": "s3cret"}},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"cluster", "update", "c-1", "--token", "x", "--api", srv.URL}, c.args...)
		if code := run(args, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", c.args, code, errOut.String())
		}
		if method != "PATCH" || path != "/v1/clusters/c-1" || !reflect.DeepEqual(body, c.want) {
			t.Errorf("%v: %s %s %v, want PATCH /v1/clusters/c-1 %v", c.args, method, path, body, c.want)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"cluster", "update", "c-1", "--token", "x", "--api", srv.URL}, &out, &errOut); code != 2 {
		t.Errorf("update without a setting: exit %d, %q", code, errOut.String())
	}
}
