package console_test

import (
	"net"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	st "github.com/zdm-io/zdm/service/servicetest"
)

// The clusters page shows why a cluster's proxy does not serve.
func TestConsoleShowsAProxyThatCannotListen(t *testing.T) {
	cfg := st.Config(t.TempDir())
	cfg.DataPlane = "milvus"
	s := st.Start(t, cfg)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	r := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, map[string]any{"name": "prod", "organization": "acme", "project": "search",
		"endpoint": "127.0.0.1:19530", "proxy_listen": busy.Addr().String()})
	if r.Status != 201 {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	b := newBrowser(t, s.URL)
	b.signIn(st.ViewerToken)
	b.run(chromedp.Click(chromedp.CSS(`#nav a[data-nav="clusters"]`)))
	// The page refreshes itself; the proxy's first try comes within a
	// second of the registration.
	b.until("the proxy's problem", `[...document.querySelectorAll("#clusters .error")].some(e => e.textContent.includes("cannot listen on `+busy.Addr().String()+`"))`, 15*time.Second)
}
