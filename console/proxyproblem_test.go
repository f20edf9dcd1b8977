package console_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	st "github.com/zdm-io/zdm/service/servicetest"
)

// The clusters page shows why a cluster's proxy does not serve.
func TestConsoleShowsAProxyThatCannotListen(t *testing.T) {
	s, _, busy := st.BusyProxy(t)
	b := newBrowser(t, s.URL)
	b.signIn(st.ViewerToken)
	b.run(chromedp.Click(chromedp.CSS(`#nav a[data-nav="clusters"]`)))
	// The page refreshes itself; the proxy's first try comes within a
	// second of the registration.
	b.until("the proxy's problem", `[...document.querySelectorAll("#clusters .error")].some(e => e.textContent.includes("cannot listen on `+busy.Addr().String()+`"))`, 15*time.Second)
}
