package service

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/eventstore"
)

// relay passes TCP connections on to a server until it is frozen: from
// then on it passes nothing, and keeps them open, as a server that hangs
// does.
type relay struct {
	ln     net.Listener
	frozen chan struct{}
	once   sync.Once
}

func newRelay(t *testing.T, to string) *relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, frozen: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			go r.pass(c, s)
			go r.pass(s, c)
		}
	}()
	return r
}

// pass copies from src to dst until the relay freezes.
func (r *relay) pass(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-r.frozen:
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (r *relay) url() string { return "nats://" + r.ln.Addr().String() }
func (r *relay) freeze()     { r.once.Do(func() { close(r.frozen) }) }

// A zdmd connected to a NATS node that hangs leaves it for another within
// seconds, where its connection waited minutes and every journal entry
// and command failed meanwhile.
func TestAConnectionLeavesANATSNodeThatHangs(t *testing.T) {
	srv, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	// Two ways to the same server, as two nodes of a cluster would be.
	addr := srv.ClientURL()[len("nats://"):]
	a, b := newRelay(t, addr), newRelay(t, addr)
	nc, err := connectNATS(nil, Config{NATSURL: a.url() + "," + b.url()}, "hang-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	hung, other := a, b
	if nc.ConnectedUrl() == b.url() {
		hung, other = b, a
	}
	hung.freeze()
	began := time.Now()
	for nc.ConnectedUrl() != other.url() || !nc.IsConnected() {
		if time.Since(began) > 30*time.Second {
			t.Fatalf("still on the hung node after %s (%s)", time.Since(began).Round(time.Second), nc.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("the other node does not answer: %v", err)
	}
	t.Logf("left the hung node after %s", time.Since(began).Round(100*time.Millisecond))
}
