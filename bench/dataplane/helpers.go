package main

import (
	"context"
	"log"
	"log/slog"
	"net"
	"time"

	zdm "github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/eventstore"
)

// startProxy serves a Milvus proxy in front of upstream through c, on a
// free port; it returns the address and a stop.
func startProxy(c *capture.Capture, upstream string, logger *slog.Logger) (string, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	p := capture.NewProxy("src", func() string { return upstream }, c, logger)
	go func() { _ = p.Serve(ln) }()
	return ln.Addr().String(), p.Stop
}

// startRelayed serves two endpoints of cluster src, as two zdmd do: one
// drives (captures through c, forwarding to upstream), the other relays
// to it; it returns the relaying one's address and a stop.
func startRelayed(c *capture.Capture, upstream string, logger *slog.Logger) (string, func()) {
	serve := func(e *capture.Endpoint) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		must(err)
		go func() { _ = e.Serve(ln) }()
		return ln.Addr().String()
	}
	driver := capture.NewEndpoint("src", func() string { return "" }, logger)
	p := capture.NewProxy("src", func() string { return upstream }, c, logger)
	driver.Drive(p)
	driverAddr := serve(driver)
	relay := capture.NewEndpoint("src", func() string { return driverAddr }, logger)
	return serve(relay), func() {
		relay.Stop()
		driver.Release(time.Second)
		driver.Stop()
		p.Stop()
	}
}

type noFailer struct{}

func (noFailer) FailMigration(_ context.Context, id, reason, detail string) error {
	log.Printf("migration would fail: %s %s", reason, detail)
	return nil
}

// embeddedJournal starts an embedded NATS on dir, as a lone zdmd runs it,
// and opens the event store and, on a connection of its own as in zdmd,
// the journal; the caller closes the server.
func embeddedJournal(ctx context.Context, dir string) (emb *eventstore.Embedded, store *eventstore.Store, journal *eventstore.Journal) {
	emb, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: dir, Listen: "none"})
	must(err)
	nc, err := emb.Connect("bench")
	must(err)
	store, err = eventstore.Open(ctx, nc)
	must(err)
	jnc, err := emb.Connect("bench-journal")
	must(err)
	journal, err = store.OpenJournalOn(ctx, jnc)
	must(err)
	return emb, store, journal
}
