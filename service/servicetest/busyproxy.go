package servicetest

import (
	"net"
	"testing"
)

// BusyProxy starts a zdmd with the Milvus data plane and registers a
// cluster whose proxy_listen is a port the test holds: its proxy cannot
// listen until busy is closed.
func BusyProxy(t testing.TB) (s *Server, clusterID string, busy net.Listener) {
	t.Helper()
	cfg := Config(t.TempDir())
	cfg.DataPlane = "milvus"
	s = Start(t, cfg)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	r := s.Do(t, "POST", "/v1/clusters", OrgAdminToken, map[string]any{"name": "prod", "organization": "acme", "project": "search",
		"endpoint": "127.0.0.1:19530", "proxy_listen": busy.Addr().String()})
	if r.Status != 201 {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	return s, r.JSON(t)["id"].(string), busy
}
