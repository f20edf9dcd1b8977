// Package nettest gives tests a TCP relay that can hang, as a server
// whose process stopped or whose network drops its packets does: its
// connections stay open and carry nothing more. It can also go down and
// come back, as a server that is killed and restarted does.
package nettest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Relay passes TCP connections on to a server until it hangs.
type Relay struct {
	ln   net.Listener
	hung chan struct{}
	once sync.Once
	down atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
}

// NewRelay relays to the server at to until the test ends.
func NewRelay(t testing.TB, to string) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{ln: ln, hung: make(chan struct{})}
	t.Cleanup(r.close)
	go r.accept(to)
	return r
}

// Addr is where clients reach the server through the relay.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Hang stops the relay passing anything on, its connections left open.
func (r *Relay) Hang() { r.once.Do(func() { close(r.hung) }) }

// Down closes every connection and turns new ones away until Up.
func (r *Relay) Down() {
	r.down.Store(true)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

// Up relays new connections again.
func (r *Relay) Up() { r.down.Store(false) }

func (r *Relay) accept(to string) {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		if r.down.Load() {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", to)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, c, s)
		r.mu.Unlock()
		go r.pass(c, s)
		go r.pass(s, c)
	}
}

// pass copies from src to dst until the relay hangs.
func (r *Relay) pass(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-r.hung:
			return
		default:
		}
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (r *Relay) close() {
	r.ln.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
}
