package e2e

import (
	"path/filepath"
	"testing"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
)

// TestProxyIsTransparentToPymilvus runs the same pymilvus workload once
// against the server and once through the proxy (no migration running):
// the results are the same.
func TestProxyIsTransparentToPymilvus(t *testing.T) {
	e := newEnv(t, "")
	p := e.serve(t)
	e.register(t, p, map[string]any{"proxy_listen": proxyAddr})
	script := filepath.Join(e.bed.Root, "e2e", "testdata", "workload.py")
	direct := e.bed.RunPython(t, script, e.bed.Source)
	milvustest.Reset(t, e.bed.Source)
	proxied := e.bed.RunPython(t, script, proxyAddr)
	if direct != proxied {
		t.Fatalf("direct:\n%s\nthrough the proxy:\n%s", direct, proxied)
	}
	if len(direct) < 200 {
		t.Fatalf("workload printed too little: %s", direct)
	}
}
