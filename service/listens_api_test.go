package service_test

import (
	"strings"
	"testing"
	"time"

	st "github.com/zdm-io/zdm/service/servicetest"
)

// A proxy address is one cluster's: registering or moving another onto it
// (the same port on the same address, every address, or a host name) is
// refused with 409 naming the field, and changes nothing; the holder is
// named only to its own organization. A deleted cluster frees its address.
func TestAProxyAddressIsOneClustersOnly(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	cluster := func(name, org, project, listen string) map[string]any {
		return map[string]any{"name": name, "organization": org, "project": project, "endpoint": "127.0.0.1:19530", "proxy_listen": listen}
	}
	a := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, cluster("a", "acme", "search", "127.0.0.1:19540")).JSON(t)["id"].(string)
	count := func() int {
		return len(s.Do(t, "GET", "/v1/clusters", st.AdminToken, nil).JSON(t)["clusters"].([]any))
	}
	for _, c := range []struct {
		token, org, project, listen string
		named                       bool
	}{
		{st.OrgAdminToken, "acme", "ads", "127.0.0.1:19540", true},
		{st.OrgAdminToken, "acme", "search", "0.0.0.0:19540", true},
		{st.OrgAdminToken, "acme", "search", "localhost:19540", true},
		{st.OtherOrgToken, "globex", "web", "127.0.0.1:19540", false},
	} {
		r := s.Do(t, "POST", "/v1/clusters", c.token, cluster("b", c.org, c.project, c.listen))
		if r.Status != 409 || r.ErrorCode(t) != "proxy_listen_in_use" || r.ErrorField(t) != "proxy_listen" {
			t.Fatalf("a second cluster on %s: %d %s, want 409 proxy_listen_in_use on proxy_listen", c.listen, r.Status, r.Body)
		}
		if named := strings.Contains(string(r.Body), a); named != c.named {
			t.Fatalf("organization %s is told the holder's ID: %v, want %v (%s)", c.org, named, c.named, r.Body)
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("%d clusters after the refusals, want 1", n)
	}
	b := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, cluster("b", "acme", "search", "127.0.0.1:19541")).JSON(t)["id"].(string)
	moved := s.Do(t, "PATCH", "/v1/clusters/"+b, st.OrgAdminToken, map[string]any{"proxy_listen": "127.0.0.1:19540"})
	if moved.Status != 409 || moved.ErrorCode(t) != "proxy_listen_in_use" {
		t.Fatalf("moving a cluster onto another's proxy address: %d %s, want 409", moved.Status, moved.Body)
	}
	if got := s.Do(t, "GET", "/v1/clusters/"+b, st.OrgAdminToken, nil).JSON(t)["proxy_listen"]; got != "127.0.0.1:19541" {
		t.Fatalf("the refused move left proxy_listen %v", got)
	}
	if r := s.Do(t, "PATCH", "/v1/clusters/"+b, st.OrgAdminToken, map[string]any{"proxy_listen": "127.0.0.1:19541", "spare": true}); r.Status != 200 {
		t.Fatalf("an update keeping a cluster's own address: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, "DELETE", "/v1/clusters/"+a, st.OrgAdminToken, nil); r.Status >= 300 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r := s.Do(t, "PATCH", "/v1/clusters/"+b, st.OrgAdminToken, map[string]any{"proxy_listen": "127.0.0.1:19540"})
		if r.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the address of a deleted cluster is still refused: %d %s", r.Status, r.Body)
		}
	}
}
