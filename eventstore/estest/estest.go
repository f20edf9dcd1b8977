// Package estest starts a real embedded JetStream server for tests.
package estest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/eventstore"
)

// Server is an embedded JetStream server on a test's temporary directory.
type Server struct {
	*eventstore.Embedded
	Dir string
}

// Start runs an embedded server, configured by the nats.conf zdm ships,
// that accepts in-process connections only; it is shut down when the test
// ends.
func Start(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	e, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: dir, Listen: "none"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return &Server{Embedded: e, Dir: dir}
}

// Conn opens a connection that is closed when the test ends.
func (s *Server) Conn(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := s.Connect(t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Store opens the event store on a new connection.
func (s *Server) Store(t testing.TB) *eventstore.Store {
	t.Helper()
	st, err := eventstore.Open(context.Background(), s.Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Claims opens holder's claims on a connection of their own, and returns
// a cut-off that closes it, as the death of the holder's zdmd would: its
// claims are not given back and expire.
func (s *Server) Claims(t testing.TB, holder string, ttl time.Duration) (*eventstore.Claims, func()) {
	t.Helper()
	nc := s.Conn(t)
	st, err := eventstore.Open(context.Background(), nc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.Claims(context.Background(), holder, ttl, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, nc.Close
}

// NewStore starts a server and opens a store on it.
func NewStore(t testing.TB) *eventstore.Store {
	t.Helper()
	return Start(t).Store(t)
}

// Journal opens st's write journal, or fails the test.
func Journal(t testing.TB, st *eventstore.Store) *eventstore.Journal {
	t.Helper()
	j, err := st.OpenJournal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// KV opens bucket in st, or fails the test.
func KV(t testing.TB, st *eventstore.Store, bucket string) *eventstore.KV {
	t.Helper()
	kv, err := st.KV(context.Background(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// StoreAt opens the event store on a new connection to url, a server
// reached over TCP as an external NATS is; opts tune the connection.
func StoreAt(t testing.TB, url string, opts ...nats.Option) *eventstore.Store {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	st, err := eventstore.Open(context.Background(), nc)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
