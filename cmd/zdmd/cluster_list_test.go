package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// cluster list sends its filters, says how to go on when the page was
// cut, and names its flag when the API refuses a value.
func TestClusterListAsksForWhatItPrints(t *testing.T) {
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.RawQuery)
		if r.URL.Query().Get("status") == "gone" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"code":"invalid_field","field":"status","message":"status must be Running, Locked, Syncing, Migrated, comma-separated; \"gone\" is none"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"clusters":[{"id":"c-2","name":"spare-1","organization":"acme","project":"search","endpoint":"h:19530","status":"Running","spare":true}],"more":true,"next_after":"c-2"}`))
	}))
	defer srv.Close()
	for _, c := range []listCase{
		{nil, "", "c-2  spare-1  acme/search"},
		{[]string{"--organization", "acme", "--project", "search", "--status", "running,locked", "--spare", "--limit", "1"},
			"limit=1&organization=acme&project=search&spare=true&status=running%2Clocked", "more: the next ones with --after c-2"},
		{[]string{"--after", "c-2", "--json"}, "after=c-2", `"next_after": "c-2"`},
	} {
		c.check(t, []string{"cluster", "list"}, srv.URL, &asked)
	}
	var out, errOut bytes.Buffer
	run([]string{"cluster", "list", "--status", "gone", "--token", "x", "--api", srv.URL}, &out, &errOut)
	if got := strings.TrimSpace(errOut.String()); !strings.HasPrefix(got, "zdmd: --status: must be Running") {
		t.Errorf("a refused status reads %q", got)
	}
}

// listCase is a list command's flags, the query it must send for them,
// and what its output must hold.
type listCase struct {
	args        []string
	query, want string
}

// check runs command with the case's flags against the API at url, whose
// handler appends each query it is sent to asked.
func (c listCase) check(t *testing.T, command []string, url string, asked *[]string) {
	t.Helper()
	*asked = nil
	var out, errOut bytes.Buffer
	if code := run(append(append(slices.Clone(command), c.args...), "--token", "x", "--api", url), &out, &errOut); code != 0 {
		t.Fatalf("%v: exit %d: %s", c.args, code, errOut.String())
	}
	if len(*asked) != 1 || (*asked)[0] != c.query {
		t.Errorf("%v asked %q, want %q", c.args, *asked, c.query)
	}
	if !strings.Contains(out.String(), c.want) {
		t.Errorf("%v: no %q in\n%s", c.args, c.want, out.String())
	}
}
