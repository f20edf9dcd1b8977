package linger

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// A relay started from this test binary: TestProcess... runs it so.
func TestMain(m *testing.M) {
	if os.Getenv("ZDM_LINGER_TEST_RELAY") == "1" {
		if err := Run(os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startRelay serves a relay in this process; closing the returned writer
// is its starter going away.
func startRelay(t *testing.T, idle, most time.Duration) (string, io.WriteCloser, <-chan error) {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- serve(inR, outW, idle, most) }()
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, outR)
	t.Cleanup(func() { inW.Close() })
	return strings.TrimSpace(line), inW, done
}

// slowServer answers each line it reads with "ok: LINE\n" after delay,
// and reports when it wrote an answer and when its peer closed.
type slowServer struct {
	addr     string
	received chan time.Time
	answered chan time.Time
	closed   chan time.Time
}

func startSlowServer(t *testing.T, delay time.Duration) *slowServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &slowServer{addr: ln.Addr().String(), received: make(chan time.Time, 16), answered: make(chan time.Time, 16),
		closed: make(chan time.Time, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						s.closed <- time.Now()
						return
					}
					s.received <- time.Now()
					time.Sleep(delay)
					// Timed before the write: the relay's idle time runs
					// from when it read the answer, which may come before
					// the write returns here.
					at := time.Now()
					if _, err := io.WriteString(c, "ok: "+line); err != nil {
						s.closed <- time.Now()
						return
					}
					s.answered <- at
				}
			}()
		}
	}()
	return s
}

func receive(t *testing.T, ch <-chan time.Time, within time.Duration, what string) time.Time {
	t.Helper()
	select {
	case at := <-ch:
		return at
	case <-time.After(within):
		t.Fatalf("no %s within %s", what, within)
		return time.Time{}
	}
}

func TestTheRelayCarriesBothWaysWhileTheCallerLives(t *testing.T) {
	srv := startSlowServer(t, 0)
	socket, _, _ := startRelay(t, time.Second, 5*time.Second)
	c, err := Dial(context.Background(), socket, srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for _, msg := range []string{"one", strings.Repeat("x", 100<<10)} {
		if _, err := io.WriteString(c, msg+"\n"); err != nil {
			t.Fatal(err)
		}
		got, err := br.ReadString('\n')
		if err != nil || got != "ok: "+msg+"\n" {
			t.Fatalf("answer to a %d-byte line: %d bytes, %v", len(msg), len(got), err)
		}
	}
}

// The caller dies right after sending: the server still answers on an
// open connection, and sees it close only once it has been idle.
func TestACallerThatDiesLeavesTheServersConnectionOpenUntilItAnswered(t *testing.T) {
	srv := startSlowServer(t, 400*time.Millisecond)
	idle := 700 * time.Millisecond // longer than the server takes to answer
	socket, _, _ := startRelay(t, idle, 5*time.Second)
	c, err := Dial(context.Background(), socket, srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "import\n"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	died := time.Now()
	answered := receive(t, srv.answered, 5*time.Second, "answer written (the server's connection was closed first)")
	closed := receive(t, srv.closed, 5*time.Second, "close after the answer")
	if closed.Before(answered.Add(idle)) {
		t.Fatalf("the server's connection closed %s after its answer, before the relay's idle time %s", closed.Sub(answered), idle)
	}
	t.Logf("caller gone at 0, answer written at %s, server's connection closed at %s", answered.Sub(died), closed.Sub(died))
}

// A server that keeps sending is cut off after the longest linger.
func TestLingeringEndsAfterItsLongestTime(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed := make(chan time.Time, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for {
			if _, err := c.Write([]byte("tick\n")); err != nil {
				closed <- time.Now()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	most := 700 * time.Millisecond
	socket, _, _ := startRelay(t, 300*time.Millisecond, most)
	c, err := Dial(context.Background(), socket, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	c.Close()
	gone := time.Now()
	at := receive(t, closed, 5*time.Second, "close of a server that never goes idle")
	if d := at.Sub(gone); d < most {
		t.Fatalf("cut off %s after the caller left, before the longest linger %s", d, most)
	}
}

// The relay ends once its starter is gone and its connections lingered.
func TestTheRelayEndsWhenItsStarterIsGone(t *testing.T) {
	// The server answers well within the relay's idle time: with the two
	// alike, a busy machine let the relay's deadline pass first.
	srv := startSlowServer(t, 100*time.Millisecond)
	socket, stdin, done := startRelay(t, time.Second, 5*time.Second)
	c, err := Dial(context.Background(), socket, srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "last\n"); err != nil {
		t.Fatal(err)
	}
	// Once relayed: a connection the relay has not accepted yet when its
	// starter goes is dropped with the listener, and reached no server.
	receive(t, srv.received, 5*time.Second, "line relayed to the server")
	c.Close()
	stdin.Close()
	select {
	case err := <-done:
		t.Fatalf("the relay ended (%v) while a connection lingered", err)
	case <-srv.answered:
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the relay still runs after its starter left and its connection lingered")
	}
	if _, err := os.Stat(socket); !os.IsNotExist(err) {
		t.Fatalf("the socket is left behind: %v", err)
	}
	if _, err := Dial(context.Background(), socket, srv.addr); err == nil {
		t.Fatal("the ended relay still takes connections")
	}
}

// A line that is not host:port ends the connection without dialling.
func TestTheRelayRefusesANameThatIsNoAddress(t *testing.T) {
	socket, _, _ := startRelay(t, time.Second, time.Second)
	for _, addr := range []string{"no-port", strings.Repeat("h", 600) + ":1"} {
		c, err := Dial(context.Background(), socket, addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("%.20s: read %d bytes, %v; want the connection closed", addr, n, err)
		}
		c.Close()
	}
}

// The relay runs as a process of its own, which outlives the connections
// of its starter; a relay that died is started again.
func TestAProcessStartsTheRelayAndAgainWhenItDied(t *testing.T) {
	t.Setenv("ZDM_LINGER_TEST_RELAY", "1")
	srv := startSlowServer(t, 0)
	p := NewProcess([]string{os.Args[0], "-test.run=^$"}, slog.New(slog.DiscardHandler))
	defer p.Close()
	ask := func() {
		c, err := p.Dial(context.Background(), srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, ok := c.(*net.UnixConn); !ok {
			t.Fatalf("dialled %T, not through the relay", c)
		}
		if _, err := io.WriteString(c, "hello\n"); err != nil {
			t.Fatal(err)
		}
		if got, err := bufio.NewReader(c).ReadString('\n'); err != nil || got != "ok: hello\n" {
			t.Fatalf("through the relay process: %q, %v", got, err)
		}
	}
	ask()
	first := p.socket
	p.mu.Lock()
	p.stdin.Close() // as if it died: it ends
	exited := p.exited
	p.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the relay did not end when its standard input closed")
	}
	ask()
	if p.socket == first {
		t.Fatal("no new relay was started")
	}
}
