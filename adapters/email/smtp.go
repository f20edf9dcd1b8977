// Package email sends zdm's notifications over SMTP: plain text and HTML
// from templates, STARTTLS or implicit TLS, optional authentication.
package email

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/zdm-io/zdm/domain"
)

// Config is the SMTP server and the sender.
type Config struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	From     string `yaml:"from"`
	// TLS is "starttls" (default), "tls" (implicit, port 465) or "none".
	TLS string `yaml:"tls"`
	// InsecureSkipVerify accepts any certificate (test servers only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// Recipients get every email, besides a migration's own.
	Recipients []string `yaml:"recipients"`
	// ConsoleURL, if set, links each email to the migration's page.
	ConsoleURL string `yaml:"console_url"`
}

// Validate names the first setting that is wrong.
func (c Config) Validate() error {
	switch {
	case c.Host == "":
		return fmt.Errorf("smtp.host is required")
	case c.Port <= 0 || c.Port > 65535:
		return fmt.Errorf("smtp.port must be from 1 to 65535")
	case c.TLS != "" && c.TLS != "starttls" && c.TLS != "tls" && c.TLS != "none":
		return fmt.Errorf(`smtp.tls must be "starttls", "tls" or "none"`)
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("smtp.from: %v", err)
	}
	for i, r := range c.Recipients {
		if _, err := mail.ParseAddress(r); err != nil {
			return fmt.Errorf("smtp.recipients[%d]: %v", i, err)
		}
	}
	return nil
}

// Sender sends notifications.
type Sender struct{ cfg Config }

// NewSender returns a sender for cfg.
func NewSender(cfg Config) (*Sender, error) {
	if cfg.TLS == "" {
		cfg.TLS = "starttls"
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Sender{cfg: cfg}, nil
}

// Send renders and sends one notification.
func (s *Sender) Send(ctx context.Context, n domain.Notification) error {
	subject, text, html, err := render(n, s.cfg.ConsoleURL)
	if err != nil {
		return err
	}
	msg, err := compose(s.cfg.From, n.To, subject, text, html)
	if err != nil {
		return err
	}
	return s.deliver(ctx, n.To, msg)
}

func (s *Sender) deliver(ctx context.Context, to []string, msg []byte) error {
	addr := net.JoinHostPort(s.cfg.Host, fmt.Sprint(s.cfg.Port))
	tlsCfg := &tls.Config{ServerName: s.cfg.Host, InsecureSkipVerify: s.cfg.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	d := net.Dialer{Timeout: 10 * time.Second}
	var conn net.Conn
	var err error
	if s.cfg.TLS == "tls" {
		conn, err = tls.DialWithDialer(&d, "tcp", addr, tlsCfg)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	_ = conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", addr, err)
	}
	defer c.Close()
	if s.cfg.TLS == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("smtp %s does not offer STARTTLS (set smtp.tls)", addr)
		}
		if err := c.StartTLS(tlsCfg); err != nil {
			return fmt.Errorf("smtp %s: STARTTLS: %w", addr, err)
		}
	}
	if s.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.cfg.Host)); err != nil {
			return fmt.Errorf("smtp %s: auth: %w", addr, err)
		}
	}
	from, _ := mail.ParseAddress(s.cfg.From)
	if err := c.Mail(from.Address); err != nil {
		return fmt.Errorf("smtp MAIL FROM: %w", err)
	}
	// A recipient the server refuses for good (a 5xx reply: no such
	// mailbox) does not keep the email from the others.
	refused := map[string]string{}
	for _, r := range to {
		a, err := mail.ParseAddress(r)
		if err != nil {
			return err
		}
		if err := c.Rcpt(a.Address); err != nil {
			if !permanent(err) {
				return fmt.Errorf("smtp RCPT TO %s: %w", a.Address, err)
			}
			refused[r] = err.Error()
		}
	}
	if len(refused) == len(to) {
		return &Refused{To: refused, All: true}
	}
	w, err := c.Data()
	if err == nil {
		if _, err = w.Write(msg); err == nil {
			err = w.Close()
		}
	}
	if err != nil {
		if permanent(err) {
			// The message itself (its size, its content): refused for
			// every recipient, and would be again.
			for _, r := range to {
				refused[r] = err.Error()
			}
			return &Refused{To: refused, All: true}
		}
		return fmt.Errorf("smtp DATA: %w", err)
	}
	// Accepted: a failed QUIT must not have it sent again.
	_ = c.Quit()
	if len(refused) > 0 {
		return &Refused{To: refused}
	}
	return nil
}

// Refused is an email the mail server refused for good (a 5xx reply), to
// every recipient (All) or to those in To, each with the server's reply:
// sent again, it would be refused again.
type Refused struct {
	To  map[string]string
	All bool
}

func (e *Refused) Error() string {
	var parts []string
	for _, r := range slices.Sorted(maps.Keys(e.To)) {
		parts = append(parts, r+" ("+e.To[r]+")")
	}
	if e.All {
		return "the mail server refused the email for good: " + strings.Join(parts, ", ")
	}
	return "the mail server refused the email for good for some recipients: " + strings.Join(parts, ", ")
}

// RefusedRecipients returns the recipients refused, and whether they are
// all of them.
func (e *Refused) RefusedRecipients() (map[string]string, bool) { return e.To, e.All }

// permanent says whether an SMTP reply is a permanent failure (5xx); a
// 4xx reply, or no reply, is worth another try.
func permanent(err error) bool {
	var reply *textproto.Error
	return errors.As(err, &reply) && reply.Code >= 500 && reply.Code < 600
}

// compose builds a multipart/alternative message.
func compose(from string, to []string, subject, text, html string) ([]byte, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, part := range []struct{ typ, content string }{{"text/plain; charset=utf-8", text}, {"text/html; charset=utf-8", html}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {part.typ}, "Content-Transfer-Encoding": {"quoted-printable"}})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write([]byte(part.content)); err != nil {
			return nil, err
		}
		qp.Close()
	}
	mw.Close()
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	var msg bytes.Buffer
	fmt.Fprintf(&msg, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@zdm>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=%q\r\n\r\n",
		from, strings.Join(to, ", "), mimeEncode(subject), time.Now().UTC().Format(time.RFC1123Z), hex.EncodeToString(id), mw.Boundary())
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}

func mimeEncode(s string) string {
	for _, r := range s {
		if r > 127 || r == '\r' || r == '\n' {
			return "=?utf-8?q?" + strings.ReplaceAll(quoted(s), " ", "_") + "?="
		}
	}
	return s
}

func quoted(s string) string {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	_, _ = w.Write([]byte(strings.NewReplacer("\r", "", "\n", " ").Replace(s)))
	w.Close()
	return b.String()
}
