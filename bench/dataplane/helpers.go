package main

import (
	"context"
	"log"
	"log/slog"
	"net"

	"github.com/zdm-io/zdm/dataplane/capture"
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

type noFailer struct{}

func (noFailer) FailMigration(_ context.Context, id, reason, detail string) error {
	log.Printf("migration would fail: %s %s", reason, detail)
	return nil
}
