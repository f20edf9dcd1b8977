package service_test

import (
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/zdm-io/zdm/adapters/email"
	st "github.com/zdm-io/zdm/service/servicetest"
)

// mailbox is an SMTP server that keeps what it receives.
type mailbox struct {
	mu   sync.Mutex
	mail []received
	// gone is a recipient refused for good (550).
	gone string
}

type received struct {
	From string
	To   []string
	Data string
}

type session struct {
	box *mailbox
	cur received
}

func (b *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{box: b}, nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error { s.cur.From = from; return nil }
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if to == s.box.gone {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	s.cur.To = append(s.cur.To, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	data, _ := io.ReadAll(quotedprintable.NewReader(r))
	s.cur.Data = string(data)
	s.box.mu.Lock()
	s.box.mail = append(s.box.mail, s.cur)
	s.box.mu.Unlock()
	s.cur = received{}
	return nil
}
func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

func (b *mailbox) with(subject string) []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []received
	for _, m := range b.mail {
		if strings.Contains(m.Data, subject) {
			out = append(out, m)
		}
	}
	return out
}

func (b *mailbox) wait(t *testing.T, subject string) received {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if m := b.with(subject); len(m) > 0 {
			return m[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no email %q", subject)
	return received{}
}

func startSMTP(t *testing.T) (*mailbox, int) {
	return startSMTPRefusing(t, "")
}

// startSMTPRefusing starts a mailbox that refuses gone for good.
func startSMTPRefusing(t *testing.T, gone string) (*mailbox, int) {
	box := &mailbox{gone: gone}
	srv := smtp.NewServer(box)
	srv.Domain, srv.AllowInsecureAuth = "localhost", true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return box, ln.Addr().(*net.TCPAddr).Port
}

func TestNotificationsAreSentOnceAndSayWhatHappened(t *testing.T) {
	box, port := startSMTP(t)
	dir := t.TempDir()
	cfg := st.Config(dir)
	cfg.SMTP = email.Config{Host: "127.0.0.1", Port: port, From: "zdm <zdm@example.com>", TLS: "none", Recipients: []string{"ops@example.com"}}
	cfg.TimeLimitCheck = 50 * time.Millisecond
	s := st.Start(t, cfg)
	src := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, map[string]any{"name": "prod", "organization": "acme", "project": "search", "endpoint": "127.0.0.1:19530"}).JSON(t)["id"].(string)
	r := s.Do(t, "POST", "/v1/migrations", st.OrgAdminToken, map[string]any{"source_cluster_id": src,
		"target": map[string]any{"name": "next", "project": "search", "provisioner": "simulated"}, "options": map[string]any{"notify": []string{"owner@example.com"}}})
	id := r.JSON(t)["id"].(string)

	lag := box.wait(t, "can be stopped")
	if !strings.Contains(strings.Join(lag.To, ","), "owner@example.com") || !strings.Contains(strings.Join(lag.To, ","), "ops@example.com") ||
		!strings.Contains(lag.Data, "stop-sync "+id+" --confirm-writes-stopped") || !strings.Contains(lag.Data, "under the threshold of 10s") {
		t.Fatalf("lag email: %+v", lag)
	}
	// A restart does not send it again: the restarted zdmd sends the
	// switch email, which comes after any lag email it would send.
	s.Stop()
	s = st.Start(t, cfg)
	// Stop-sync is refused until the restarted zdmd has sampled the lag.
	stopSyncOnceSampled(t, s, id)
	done := box.wait(t, "switched over")
	if n := len(box.with("can be stopped")); n != 1 {
		t.Fatalf("%d lag emails, want exactly 1", n)
	}
	if !strings.Contains(done.Data, "Verification:") || !strings.Contains(done.Data, "Write pause at the switch") || !strings.Contains(done.Data, "switch: equal") {
		t.Fatalf("switch email: %s", done.Data)
	}

	// A failure says its reason (here, a sync time limit of a second);
	// a sync close to its limit is warned of.
	s.Do(t, "DELETE", "/v1/clusters/t-"+id, st.AdminToken, nil)
	r = s.Do(t, "POST", "/v1/migrations", st.OrgAdminToken, map[string]any{"source_cluster_id": src,
		"target": map[string]any{"name": "other", "project": "search", "provisioner": "simulated"}, "options": map[string]any{"sync_time_limit": "1s"}})
	failedID := r.JSON(t)["id"].(string)
	failed := box.wait(t, "migration "+failedID+" failed")
	if !strings.Contains(failed.Data, "Reason: sync_time_limit") {
		t.Fatalf("failure email: %s", failed.Data)
	}
	s.WaitState(t, failedID, "failed", 10*time.Second)
	// The clean-up unlocks the source.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c := s.Do(t, "GET", "/v1/clusters/"+src, st.OrgAdminToken, nil).JSON(t); c["status"] != "Locked" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the source stays %v after the failure", c["status"])
		}
	}
	s.Do(t, "DELETE", "/v1/clusters/t-"+failedID, st.AdminToken, nil)
	r = s.Do(t, "POST", "/v1/migrations", st.OrgAdminToken, map[string]any{"source_cluster_id": src,
		"target": map[string]any{"name": "third", "project": "search", "provisioner": "simulated"}, "options": map[string]any{"sync_time_limit": "23h"}})
	if r.Status != 202 {
		t.Fatalf("third migration: %d %s", r.Status, r.Body)
	}
	thirdID := r.JSON(t)["id"].(string)
	warn := box.wait(t, "migration "+thirdID+" reaches its sync time limit")
	if !strings.Contains(warn.Data, "sync_time_limit") {
		t.Fatalf("warning email: %s", warn.Data)
	}
}

// A relay that is down when an email is due gets it once it is back, and
// once only.
func TestAnEmailWaitsForItsRelayAndIsSentOnce(t *testing.T) {
	// Down: connections are accepted and dropped, and counted.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	var dropped atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dropped.Add(1)
			c.Close()
		}
	}()
	cfg := st.Config(t.TempDir())
	cfg.SMTP = email.Config{Host: "127.0.0.1", Port: port, From: "zdm@example.com", TLS: "none", Recipients: []string{"ops@example.com"}}
	s := st.Start(t, cfg)
	src := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, map[string]any{"name": "prod", "organization": "acme", "project": "search", "endpoint": "127.0.0.1:19530"}).JSON(t)["id"].(string)
	id := s.Do(t, "POST", "/v1/migrations", st.OrgAdminToken, map[string]any{"source_cluster_id": src,
		"target": map[string]any{"name": "next", "project": "search", "provisioner": "simulated"}}).JSON(t)["id"].(string)
	for deadline := time.Now().Add(20 * time.Second); dropped.Load() < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("zdmd tried the relay %d times", dropped.Load())
		}
	}
	// Back, on the same port.
	ln.Close()
	box := &mailbox{}
	srv := smtp.NewServer(box)
	srv.Domain, srv.AllowInsecureAuth = "localhost", true
	back, err := net.Listen("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(back) }()
	t.Cleanup(func() { srv.Close() })
	box.wait(t, "can be stopped")
	if r := s.Do(t, "POST", "/v1/migrations/"+id+"/stop-sync", st.OrgAdminToken, map[string]any{"confirm_writes_stopped": true}); r.Status != 202 {
		t.Fatalf("stop-sync: %d %s", r.Status, r.Body)
	}
	box.wait(t, "switched over")
	if n := len(box.with("can be stopped")); n != 1 {
		t.Fatalf("%d lag emails after %d dropped attempts, want exactly 1", n, dropped.Load())
	}
}

// An email the mail server refuses for good to one recipient reaches the
// others (each once), the migration's view says whom it missed and why, and it holds
// up no email after it.
func TestAnEmailRefusedForGoodToOneRecipientIsRecordedAndTheNextGoOut(t *testing.T) {
	box, port := startSMTPRefusing(t, "gone@example.com")
	cfg := st.Config(t.TempDir())
	cfg.SMTP = email.Config{Host: "127.0.0.1", Port: port, From: "zdm@example.com", TLS: "none", Recipients: []string{"ops@example.com"}}
	s := st.Start(t, cfg)
	src := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, map[string]any{"name": "prod", "organization": "acme", "project": "search", "endpoint": "127.0.0.1:19530"}).JSON(t)["id"].(string)
	id := s.Do(t, "POST", "/v1/migrations", st.OrgAdminToken, map[string]any{"source_cluster_id": src,
		"target":  map[string]any{"name": "next", "project": "search", "provisioner": "simulated"},
		"options": map[string]any{"notify": []string{"gone@example.com", "ops@example.com"}}}).JSON(t)["id"].(string) // ops also configured: sent once
	if lag := box.wait(t, "can be stopped"); strings.Join(lag.To, ",") != "ops@example.com" {
		t.Fatalf("the lag email went to %v, want ops@example.com alone", lag.To)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m := s.Do(t, "GET", "/v1/migrations/"+id, st.OrgAdminToken, nil).JSON(t)
		if n, _ := m["notifications"].([]any); len(n) == 1 {
			sent := n[0].(map[string]any)
			refused, _ := sent["refused"].(map[string]any)
			why, _ := refused["gone@example.com"].(string)
			if fmt.Sprint(sent["recipients"]) != "[ops@example.com]" || !strings.Contains(why, "550") {
				t.Fatalf("the lag email is recorded as %v, want it sent to ops@example.com and refused to gone@example.com with the reply", sent)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lag email is not recorded: %v", m["notifications"])
		}
	}
	stopSyncOnceSampled(t, s, id)
	box.wait(t, "switched over")
}

// stopSyncOnceSampled stops the sync of migration id, trying again while
// it is refused (no lag sampled yet), for up to 10 s.
func stopSyncOnceSampled(t *testing.T, s *st.Server, id string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r := s.Do(t, "POST", "/v1/migrations/"+id+"/stop-sync", st.OrgAdminToken, map[string]any{"confirm_writes_stopped": true})
		if r.Status == 202 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stop-sync: %d %s", r.Status, r.Body)
		}
	}
}
