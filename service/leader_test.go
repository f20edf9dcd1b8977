package service

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// TestTheLeaseIsGivenBackOnlyOnceTheTermStopped stops a zdmd whose term
// takes a while to stop (a proxy finishing its last writes): the lease
// stays its own until then, so no other instance forwards writes while
// they are journaled, and the capture's term is not ended by a clean stop.
func TestTheLeaseIsGivenBackOnlyOnceTheTermStopped(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	m, cfg := simulatedMain(t, ctx)
	started, stopping, finish := make(chan struct{}), make(chan struct{}), make(chan struct{})
	lostAtStop := make(chan bool, 1)
	simulated := m.plane
	m.plane = func(ctx, lost context.Context) (termPlane, error) {
		p, err := simulated(ctx, lost)
		close(started)
		wait := p.wait
		p.wait = func() {
			wait()
			close(stopping)
			<-finish // the proxies still drain
			lostAtStop <- lost.Err() != nil
		}
		return p, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, ln) }()
	<-started
	holder := func() string {
		v, err := m.lease.Holder(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return v.Holder
	}
	if h := holder(); h != m.instance {
		t.Fatalf("lease held by %q, want %q", h, m.instance)
	}
	stop()
	<-stopping
	time.Sleep(2 * cfg.leaseTTL() / 3) // several renewals
	if h := holder(); h != m.instance {
		t.Fatalf("while the term stops the lease is held by %q, want still %q", h, m.instance)
	}
	if m.leading.Load() {
		t.Fatal("an instance whose term is stopping still says it leads")
	}
	close(finish)
	if <-lostAtStop {
		t.Fatal("a clean stop ended the capture's term as if the lease were lost")
	}
	<-done
	m.Close()
}

// simulatedMain is a zdmd on the simulated data plane and an in-process
// NATS, logging nowhere.
func simulatedMain(t *testing.T, ctx context.Context) (*Main, Config) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.NATSListen, cfg.DataPlane = t.TempDir(), "none", "simulated"
	m, err := NewMain(ctx, cfg, "admin-token", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return m, cfg
}
