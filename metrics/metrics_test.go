package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestKeyWaitsAreExportedAsCounters(t *testing.T) {
	m := New([]string{"syncing"}, func() map[string]int { return nil }, func() map[string]Progress { return nil })
	waits := KeyWaits{Writes: 3, Seconds: 1.5}
	m.RegisterKeyWaits(func() KeyWaits { return waits })
	scrape := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		body, _ := io.ReadAll(rec.Body)
		return string(body)
	}
	body := scrape()
	for _, want := range []string{"# TYPE zdm_proxy_key_waits_total counter", "zdm_proxy_key_waits_total 3", "zdm_proxy_key_wait_seconds_total 1.5"} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in\n%s", want, body)
		}
	}
	waits = KeyWaits{Writes: 5, Seconds: 2}
	if body := scrape(); !strings.Contains(body, "zdm_proxy_key_waits_total 5") {
		t.Errorf("the counter is not read at scrape time:\n%s", body)
	}
}

func TestLostAndSentBackRelaysAreCounted(t *testing.T) {
	m := New(nil, func() map[string]int { return nil }, func() map[string]Progress { return nil })
	m.RelayLost(true)
	m.RelayLost(true)
	m.RelayLost(false)
	m.RelaySentBack()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{`zdm_proxy_relay_lost_total{outcome="resent"} 2`, `zdm_proxy_relay_lost_total{outcome="failed"} 1`, "zdm_proxy_relay_sent_back_total 1"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("no %q in\n%s", want, body)
		}
	}
}
