package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
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
	dir := t.TempDir()
	ca, cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "c.pem"), filepath.Join(dir, "c.key")
	for _, f := range []string{ca, cert, key} {
		if err := os.WriteFile(f, []byte("PEM of "+filepath.Base(f)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		args []string
		want map[string]any
	}{
		{[]string{"--proxy-listen", ""}, map[string]any{"proxy_listen": ""}},
		{[]string{"--spare=false", "--endpoint", "h:19530"}, map[string]any{"spare": false, "endpoint": "h:19530"}},
		{[]string{"--password"}, map[string]any{"password": "s3cret"}},
		{[]string{"--tls-ca", ca, "--tls-server-name", "milvus.internal"},
			map[string]any{"tls": map[string]any{"mode": "one_way", "ca_pem": "PEM of ca.pem", "server_name": "milvus.internal"}}},
		{[]string{"--tls-cert", cert, "--tls-key", key},
			map[string]any{"tls": map[string]any{"mode": "mutual", "client_cert_pem": "PEM of c.pem", "client_key_pem": "PEM of c.key"}}},
		{[]string{"--tls", "none"}, map[string]any{"tls": map[string]any{"mode": "none"}}},
		{[]string{"--storage-s3-endpoint", ""}, map[string]any{"storage_s3": map[string]any{}}},
		{[]string{"--storage-path", ""}, map[string]any{"storage_path": ""}},
		{[]string{"--proxy-tls-cert", cert, "--proxy-tls-key", key, "--proxy-tls-client-ca", ca},
			map[string]any{"proxy_tls": map[string]any{"mode": "mutual", "cert_pem": "PEM of c.pem", "key_pem": "PEM of c.key", "client_ca_pem": "PEM of ca.pem"}}},
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
	errOut.Reset()
	if code := run([]string{"cluster", "update", "c-1", "--token", "x", "--api", srv.URL, "--tls-ca", filepath.Join(dir, "none.pem")}, &out, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "--tls-ca") {
		t.Errorf("a CA file that is not there: exit %d, %q", code, errOut.String())
	}
}

// An error on a field of the request names the flag that gave it.
func TestAFieldOfTheRequestIsToldAsItsFlag(t *testing.T) {
	for field, flag := range map[string]string{
		"tls.mode": "tls", "tls.ca_pem": "tls-ca", "tls.client_cert_pem": "tls-cert", "tls.client_key_pem": "tls-key",
		"tls.server_name": "tls-server-name", "proxy_tls": "proxy-tls", "proxy_tls.cert_pem": "proxy-tls-cert",
		"proxy_tls.key_pem": "proxy-tls-key", "proxy_tls.client_ca_pem": "proxy-tls-client-ca", "storage_s3.bucket": "storage-s3-bucket",
	} {
		if got := flagOfField(field); got != flag {
			t.Errorf("%s: --%s, want --%s", field, got, flag)
		}
	}
}

// An error says each thing once: the flag and the API's message without
// the field's name again; a zdmd out of reach, its address once.
func TestAnErrorSaysItsPrefixOnce(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		_, _ = w.Write([]byte(`{"error":{"code":"invalid_field","field":"tls.ca_pem","message":"tls.ca_pem holds no PEM certificate"}}`))
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	run([]string{"cluster", "update", "c-1", "--token", "x", "--api", srv.URL, "--tls", "one_way"}, &out, &errOut)
	if got := strings.TrimSpace(errOut.String()); got != "zdmd: --tls-ca: holds no PEM certificate" {
		t.Errorf("a field error reads %q", got)
	}
	srv.Close()
	errOut.Reset()
	run([]string{"cluster", "show", "c-1", "--token", "x", "--api", srv.URL}, &out, &errOut)
	if got := errOut.String(); strings.Count(got, srv.URL) != 1 || strings.Count(got, "zdmd") != 1 {
		t.Errorf("a zdmd out of reach reads %q", got)
	}
}

// A list reads as a table, the source by its name; --json gives the
// API's answer, and a cancel answers in a line.
func TestListsAndCancelReadAsTablesAndLines(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/migrations":
			_, _ = w.Write([]byte(`{"migrations":[{"id":"m-2","state":"syncing","stage":"migration","source_cluster_id":"c-9","source":{"name":"prod"},` +
				`"target":{"name":"prod-next"},"progress":{"rows_copied":1200,"rows_total":1200},"lag_seconds":4000,"created_at":"2026-12-05T01:16:52Z"}]}`))
		case "/v1/clusters":
			_, _ = w.Write([]byte(`{"clusters":[{"id":"c-9","name":"prod","organization":"acme","project":"search","endpoint":"h:19530","status":"Locked"}]}`))
		case "/v1/migrations/m-2/cancel":
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"id":"m-2","state":"cancelled"}`))
		}
	}))
	defer srv.Close()
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"migration", "list"}, []string{"SOURCE", "m-2  syncing  migration  prod    prod-next  1200/1200  1h 6m  2026-12-05 01:16"}},
		{[]string{"migration", "list", "--json"}, []string{`"source_cluster_id": "c-9"`}},
		{[]string{"cluster", "list"}, []string{"c-9  prod  acme/search"}},
		{[]string{"cluster", "list", "--json"}, []string{`"endpoint": "h:19530"`}},
		{[]string{"migration", "cancel", "m-2"}, []string{"m-2: cancelled (state cancelled)"}},
		{[]string{"migration", "cancel", "m-2", "--json"}, []string{`"state": "cancelled"`}},
	} {
		var out, errOut bytes.Buffer
		if code := run(append(c.args, "--token", "x", "--api", srv.URL), &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", c.args, code, errOut.String())
		}
		for _, want := range c.want {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%v: no %q in\n%s", c.args, want, out.String())
			}
		}
	}
}

// A flag given a value it refuses says so, and is not taken as missing.
func TestAFlagGivenABadValueIsNotToldMissing(t *testing.T) {
	for args, want := range map[string]string{
		"migration update m-1 --copy-rate-limit -3": "--copy-rate-limit: must be 0 (no limit) or more rows per second, not -3",
		"migration update m-1":                      "--copy-rate-limit is required",
	} {
		var out, errOut bytes.Buffer
		if code := run(append(strings.Fields(args), "--token", "x", "--api", "http://127.0.0.1:1"), &out, &errOut); code != 2 || !strings.Contains(errOut.String(), want) {
			t.Errorf("%s: exit %d %q, want 2 and %q", args, code, errOut.String(), want)
		}
	}
}

// A registration given an S3 setting without its endpoint sends the S3
// setting, which the API refuses by name, instead of registering the
// cluster without storage.
func TestAnS3FlagWithoutItsEndpointIsSent(t *testing.T) {
	srv, last := bodies(t, `{"id":"c-1","status":"Running"}`)
	for _, flag := range []string{"--storage-s3-bucket=b", "--storage-s3-region=r", "--storage-s3-root-path=files", "--storage-s3-ssl"} {
		var out, errOut bytes.Buffer
		args := []string{"cluster", "register", "--token", "x", "--api", srv.URL, "--name", "n", "--organization", "o",
			"--project", "p", "--endpoint", "h:19530", flag}
		if code := run(args, &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d: %s", flag, code, errOut.String())
		}
		body := last()
		s3, ok := body["storage_s3"].(map[string]any)
		if !ok || s3["endpoint"] != "" {
			t.Errorf("%s: storage_s3 sent as %v", flag, body["storage_s3"])
		}
	}
	var out, errOut bytes.Buffer
	args := []string{"cluster", "register", "--token", "x", "--api", srv.URL, "--name", "n", "--organization", "o", "--project", "p", "--endpoint", "h:19530"}
	if code := run(args, &out, &errOut); code != 0 || last()["storage_s3"] != nil {
		t.Errorf("no S3 flag: exit %d, storage_s3 sent as %v", code, last()["storage_s3"])
	}
}

// migration start sends the options its flags give, a lag threshold of 0
// too (which the API refuses), and none it was not given.
func TestMigrationStartSendsTheOptionsGiven(t *testing.T) {
	srv, last := bodies(t, `{"id":"m-1"}`)
	for _, c := range []struct {
		flags []string
		want  map[string]any
	}{
		{nil, map[string]any{}},
		{[]string{"--lag-threshold", "0"}, map[string]any{"lag_threshold_seconds": 0.0}},
		{[]string{"--lag-threshold", "2.5", "--copy-mode", "rows"}, map[string]any{"lag_threshold_seconds": 2.5, "copy_mode": "rows"}},
		{[]string{"--notify", " ops@x.io, oncall@x.io,"}, map[string]any{"notify": []any{"ops@x.io", "oncall@x.io"}}},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"migration", "start", "--token", "x", "--api", srv.URL, "--source", "c-1", "--target-name", "n",
			"--target-project", "p"}, c.flags...)
		if code := run(args, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", c.flags, code, errOut.String())
		}
		if got := last()["options"]; !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v: options sent as %v, want %v", c.flags, got, c.want)
		}
	}
}

// A --notify that names no address is refused before any request.
func TestMigrationStartRefusesAnEmptyNotify(t *testing.T) {
	srv, last := bodies(t, `{"id":"m-1"}`)
	var out, errOut bytes.Buffer
	args := []string{"migration", "start", "--token", "x", "--api", srv.URL, "--source", "c-1", "--target-name", "n", "--target-project", "p", "--notify", " , "}
	if code := run(args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "--notify") || last() != nil {
		t.Fatalf("exit %d, %q, request %v: want 2, a message naming --notify, no request", code, errOut.String(), last())
	}
}

// bodies is an API that answers every request with answer; last returns
// the JSON body of the latest request.
func bodies(t *testing.T, answer string) (*httptest.Server, func() map[string]any) {
	var mu sync.Mutex
	var body map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		mu.Lock()
		body = nil
		_ = json.Unmarshal(data, &body)
		mu.Unlock()
		_, _ = w.Write([]byte(answer))
	}))
	t.Cleanup(srv.Close)
	return srv, func() map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return body
	}
}

// cluster show reads as lines an operator reads: where zdm and the
// applications reach the cluster, its storage, what holds it; --json is
// the API's answer.
func TestClusterShowReadsAsLines(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"id":"c-9","name":"prod","organization":"acme","project":"search","endpoint":"h:19530","status":"Locked",` +
			`"tls":"one_way","has_credentials":true,"proxy_listen":"0.0.0.0:19590","proxy_tls":"mutual","proxy_problem":"listen tcp 0.0.0.0:19590: address already in use",` +
			`"storage_s3":{"endpoint":"minio:9000","bucket":"milvus","root_path":"files","use_ssl":true},"migration_id":"m-2",` +
			`"created_at":"2026-12-05T01:16:52Z","updated_at":"2026-12-06T02:00:00Z"}`))
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	if code := run([]string{"cluster", "show", "c-9", "--token", "x", "--api", srv.URL}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{
		"cluster c-9  prod (acme/search)  Locked\n",
		"endpoint     h:19530 (TLS one-way)\n",
		"credentials  a user and password, sealed (never shown)\n",
		"proxy        0.0.0.0:19590 (TLS mutual)\n",
		"not serving on the zdmd that answered: listen tcp 0.0.0.0:19590: address already in use\n",
		"storage      S3 bucket milvus at https://minio:9000, root path files\n",
		"migration    m-2 (zdmd migration show m-2)\n",
		"registered   2026-12-05 01:16 UTC, changed 2026-12-06 02:00 UTC\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("cluster show lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run([]string{"cluster", "show", "c-9", "--json", "--token", "x", "--api", srv.URL}, &out, &errOut); code != 0 || !strings.Contains(out.String(), `"proxy_tls": "mutual"`) {
		t.Errorf("cluster show --json: exit %d: %s", code, out.String())
	}
}

// migration list sends its filters and asks for summaries for its table
// (full views for --json, unless --summary), says how to go on when the
// page was cut, and names its flag when the API refuses a value.
func TestMigrationListAsksForWhatItPrints(t *testing.T) {
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.RawQuery)
		if r.URL.Query().Get("state") == "paused" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"code":"invalid_field","field":"state","message":"state must be running, ended or a migration state"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"migrations":[{"id":"m-2","state":"syncing","created_at":"2026-12-05T01:16:52Z"}],"more":true,"next_after":"m-2"}`))
	}))
	defer srv.Close()
	for _, c := range []listCase{
		{[]string{"--state", "running", "--source", "c-9", "--limit", "1"}, "limit=1&source_cluster_id=c-9&state=running&view=summary", "more: the next ones with --after m-2"},
		{[]string{"--after", "m-2"}, "after=m-2&view=summary", "m-2  syncing"},
		{[]string{"--json"}, "", `"next_after": "m-2"`},
		{[]string{"--json", "--summary"}, "view=summary", `"more": true`},
	} {
		c.check(t, []string{"migration", "list"}, srv.URL, &asked)
	}
	var out, errOut bytes.Buffer
	run([]string{"migration", "list", "--state", "paused", "--token", "x", "--api", srv.URL}, &out, &errOut)
	if got := strings.TrimSpace(errOut.String()); got != "zdmd: --state: must be running, ended or a migration state" {
		t.Errorf("a refused state reads %q", got)
	}
}
