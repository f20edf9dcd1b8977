package console_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/emersion/go-smtp"

	"github.com/zdm-io/zdm/adapters/email"
	st "github.com/zdm-io/zdm/service/servicetest"
)

// refusing is a mail server that takes every recipient but one, which
// it refuses for good.
type refusing struct{ gone string }

func (r refusing) NewSession(*smtp.Conn) (smtp.Session, error) { return refusingSession(r), nil }

type refusingSession refusing

func (refusingSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s refusingSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if to == s.gone {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	return nil
}
func (refusingSession) Data(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }
func (refusingSession) Reset()                 {}
func (refusingSession) Logout() error          { return nil }

// The migration page lists the emails sent, and names a recipient the
// mail server refused for good with its reply.
func TestConsoleShowsWhomAnEmailReachedAndWhomTheServerRefused(t *testing.T) {
	srv := smtp.NewServer(refusing{gone: "gone@example.com"})
	srv.Domain = "localhost"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	cfg := st.Config(t.TempDir())
	cfg.SMTP = email.Config{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, From: "zdm@example.com", TLS: "none", Recipients: []string{"ops@example.com"}}
	s := st.Start(t, cfg)
	src := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, map[string]any{"name": "prod", "organization": "acme", "project": "search", "endpoint": "10.0.0.5:19530"}).JSON(t)["id"].(string)
	id := s.Do(t, "POST", "/v1/migrations", st.OrgAdminToken, map[string]any{"source_cluster_id": src,
		"target":  map[string]any{"name": "next", "project": "search", "provisioner": "simulated"},
		"options": map[string]any{"notify": []string{"gone@example.com"}}}).JSON(t)["id"].(string)
	b := newBrowser(t, s.URL)
	b.signIn(st.OrgAdminToken)
	b.run(chromedp.Navigate(s.URL + "/#/migrations/" + id))
	b.until("the emails", `(document.getElementById("emails") || {innerText: ""}).innerText.includes("Sync can be stopped: sent to ops@example.com; refused for gone@example.com: 550")`, 30*time.Second)
	if !eval[bool](b, `document.querySelector("#emails li").classList.contains("bad")`) {
		t.Error("an email refused to a recipient is not marked as bad")
	}
	b.screenshot("10-emails")
}
