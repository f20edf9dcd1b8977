package email

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/zdm-io/zdm/domain"
)

// relay is an SMTP server as operators run one: TLS (STARTTLS or
// implicit), and PLAIN authentication of one user.
type relay struct {
	mu       sync.Mutex
	got      []delivery
	password string
	// refuse answers RCPT TO of a recipient, and data the DATA command,
	// with an error reply.
	refuse map[string]*smtp.SMTPError
	data   *smtp.SMTPError
}

type delivery struct {
	user   string
	tls    bool
	to     []string
	header string
}

type relaySession struct {
	r    *relay
	conn *smtp.Conn
	cur  delivery
}

func (r *relay) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &relaySession{r: r, conn: c}, nil
}

func (s *relaySession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *relaySession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if pass != s.r.password {
			return errors.New("bad credentials")
		}
		s.cur.user = user
		return nil
	}), nil
}

func (s *relaySession) Mail(string, *smtp.MailOptions) error {
	if s.cur.user == "" {
		return errors.New("authentication required")
	}
	_, s.cur.tls = s.conn.TLSConnectionState()
	return nil
}

func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if e := s.r.refuse[to]; e != nil {
		return e
	}
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *relaySession) Data(r io.Reader) error {
	data, _ := io.ReadAll(r)
	s.r.mu.Lock()
	refuse := s.r.data
	s.r.mu.Unlock()
	if refuse != nil {
		return refuse
	}
	s.cur.header, _, _ = strings.Cut(string(data), "\r\n\r\n")
	s.r.mu.Lock()
	s.r.got = append(s.r.got, s.cur)
	s.r.mu.Unlock()
	return nil
}

func (s *relaySession) Reset()        { s.cur = delivery{user: s.cur.user} }
func (s *relaySession) Logout() error { return nil }

// selfSigned is a certificate for 127.0.0.1, made for the test.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serve runs the relay: implicit TLS when implicit, else plain with
// STARTTLS offered when offerTLS.
func (r *relay) serve(t *testing.T, implicit, offerTLS bool) int {
	t.Helper()
	srv := smtp.NewServer(r)
	srv.Domain = "relay.test"
	if implicit || offerTLS {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	}
	var ln net.Listener
	var err error
	if implicit {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", srv.TLSConfig)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

func notification() domain.Notification {
	m := domain.NewMigration()
	m.ID = "m-1"
	return domain.Notification{Kind: domain.NotifyFailed, To: []string{"owner@example.com"}, Migration: m}
}

func TestMailReachesTheRelayOverTLSWithAuthentication(t *testing.T) {
	for _, mode := range []string{"starttls", "tls"} {
		t.Run(mode, func(t *testing.T) {
			r := &relay{password: "s3cret"}
			port := r.serve(t, mode == "tls", mode == "starttls")
			cfg := Config{Host: "127.0.0.1", Port: port, From: "zdm <zdm@example.com>", TLS: mode, InsecureSkipVerify: true,
				Username: "zdm", Password: "s3cret"}
			s, err := NewSender(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Send(context.Background(), notification()); err != nil {
				t.Fatal(err)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.got) != 1 || !r.got[0].tls || r.got[0].user != "zdm" || strings.Join(r.got[0].to, ",") != "owner@example.com" ||
				!strings.Contains(r.got[0].header, "Subject: zdm: migration m-1 failed") {
				t.Fatalf("relay received %+v", r.got)
			}
			// A wrong password is an error that says so, and sends nothing.
			cfg.Password = "wrong"
			s, _ = NewSender(cfg)
			if err := s.Send(context.Background(), notification()); err == nil || !strings.Contains(err.Error(), "auth") {
				t.Fatalf("wrong password: %v", err)
			}
			if len(r.got) != 1 {
				t.Fatalf("a refused login delivered mail: %+v", r.got)
			}
		})
	}
}

func TestARelayWithoutSTARTTLSIsNotSentCredentialsInClear(t *testing.T) {
	r := &relay{password: "s3cret"}
	port := r.serve(t, false, false)
	s, err := NewSender(Config{Host: "127.0.0.1", Port: port, From: "zdm@example.com", Username: "zdm", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), notification())
	if err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") {
		t.Fatalf("got %v", err)
	}
	if len(r.got) != 0 {
		t.Fatalf("mail went out without TLS: %+v", r.got)
	}
}

// A recipient the server refuses for good does not keep the email from
// the others, and the error names it as refused for good; a refusal for
// now (4xx) is an error to try again; a message refused for good is
// refused for every recipient.
func TestARecipientRefusedForGoodDoesNotKeepTheEmailFromTheOthers(t *testing.T) {
	gone := &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	busy := &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
	r := &relay{password: "pw", refuse: map[string]*smtp.SMTPError{"gone@example.com": gone, "busy@example.com": busy}}
	port := r.serve(t, false, true)
	s, err := NewSender(Config{Host: "127.0.0.1", Port: port, From: "zdm@example.com", InsecureSkipVerify: true, Username: "zdm", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	send := func(to ...string) error {
		n := notification()
		n.To = to
		return s.Send(context.Background(), n)
	}
	var refused *Refused
	err = send("owner@example.com", "gone@example.com")
	if !errors.As(err, &refused) || refused.All || len(refused.To) != 1 || !strings.Contains(refused.To["gone@example.com"], "550") {
		t.Fatalf("one recipient refused: %v, want a Refused naming gone@example.com alone", err)
	}
	r.mu.Lock()
	got := slices.Clone(r.got)
	r.mu.Unlock()
	if len(got) != 1 || strings.Join(got[0].to, ",") != "owner@example.com" {
		t.Fatalf("the relay received %+v, want one email to owner@example.com", got)
	}
	if err := send("gone@example.com"); !errors.As(err, &refused) || !refused.All {
		t.Fatalf("every recipient refused: %v, want a Refused of all", err)
	}
	if err := send("owner@example.com", "busy@example.com"); err == nil || errors.As(err, &refused) {
		t.Fatalf("a recipient refused for now: %v, want an error to try again", err)
	}
	r.mu.Lock()
	r.data = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "message too big"}
	r.mu.Unlock()
	if err := send("owner@example.com"); !errors.As(err, &refused) || !refused.All || !strings.Contains(refused.To["owner@example.com"], "552") {
		t.Fatalf("the message refused for good: %v, want a Refused of all", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) != 1 {
		t.Fatalf("the relay received %d emails, want the first alone", len(r.got))
	}
}
