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
	problem := func() (string, any) {
		view := s.Do(t, "GET", "/v1/clusters/"+id, st.ViewerToken, nil).JSON(t)
		listed := s.Do(t, "GET", "/v1/clusters", st.ViewerToken, nil).JSON(t)["clusters"].([]any)[0].(map[string]any)
		ready := s.Do(t, "GET", "/readyz", "", nil).JSON(t)
		p, _ := view["proxy_problem"].(string)
		if listed["proxy_problem"] != view["proxy_problem"] {
			t.Fatalf("the list says %v, the cluster's view %v", listed["proxy_problem"], view["proxy_problem"])
		}
		return p, ready["proxies_not_serving"]
	}
	var p string
	var count any
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if p, count = problem(); p != "" || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(p, addr) || !strings.Contains(p, "address already in use") || count != 1.0 {
		t.Fatalf("a proxy on a busy address: proxy_problem %q, /readyz proxies_not_serving %v", p, count)
	}
	busy.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if p, count = problem(); p == "" && count == nil {
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
