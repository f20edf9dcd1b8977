package service_test

import (
	"net"
	"strings"
	"testing"
	"time"

	st "github.com/zdm-io/zdm/service/servicetest"
)

// A cluster whose proxy cannot listen on this zdmd says so: its view
// names the address and the error, the cluster list and /readyz count
// it, and once the address is free the proxy serves and the problem is
// gone.
func TestAProxyThatCannotListenSaysWhy(t *testing.T) {
	s, id, busy := st.BusyProxy(t)
	addr := busy.Addr().String()
	// problem reads the cluster's view, the list and /readyz; the three
	// are read one after the other, and the proxy is tried again every
	// second meanwhile, so a read that falls across a change says so
	// (agree false) and is made again.
	problem := func() (p string, count any, agree bool) {
		view := s.Do(t, "GET", "/v1/clusters/"+id, st.ViewerToken, nil).JSON(t)
		listed := s.Do(t, "GET", "/v1/clusters", st.ViewerToken, nil).JSON(t)["clusters"].([]any)[0].(map[string]any)
		ready := s.Do(t, "GET", "/readyz", "", nil).JSON(t)
		p, _ = view["proxy_problem"].(string)
		return p, ready["proxies_not_serving"], listed["proxy_problem"] == view["proxy_problem"]
	}
	var p string
	var count any
	agree := false
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if p, count, agree = problem(); p != "" && agree || time.Now().After(deadline) {
			break
		}
	}
	if !agree {
		t.Fatalf("the list and the cluster's view (%q) never agreed", p)
	}
	if !strings.Contains(p, addr) || !strings.Contains(p, "address already in use") || count != 1.0 {
		t.Fatalf("a proxy on a busy address: proxy_problem %q, /readyz proxies_not_serving %v", p, count)
	}
	busy.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if p, count, agree = problem(); p == "" && count == nil && agree {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the address freed: proxy_problem %q, /readyz proxies_not_serving %v", p, count)
		}
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
		t.Fatalf("the proxy does not listen once the address is free: %v", err)
	} else {
		c.Close()
	}
}
