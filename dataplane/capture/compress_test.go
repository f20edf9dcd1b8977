package capture

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
)

// Milvus takes requests compressed with gzip (gRPC's grpc-encoding), as
// gRPC's own clients send them when asked to. Through the proxy they must
// be served alike, and journaled as the request itself, not its
// compressed form.
func TestAGzipCompressedWriteIsForwardedAndJournaled(t *testing.T) {
	c, journal := journaledCapture(t)
	addr := serveProxy(t, NewProxy("src", func() string { return fakeMilvus(t) }, c, nil))
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.UseCompressor(gzip.Name)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, resp := upsertOf(t, 7), []byte(nil)
	if err := cc.Invoke(ctx, upsertMethod, &req, &resp, grpc.ForceCodecV2(upstreamCodec{})); err != nil {
		t.Fatalf("a compressed upsert through the proxy: %v", err)
	}
	got := journaled(t, journal)
	if len(got) != 1 || !bytes.Equal(got[0].Request, req) {
		t.Fatalf("journaled %d entries; the first holds the request as sent: %t", len(got), len(got) == 1 && bytes.Equal(got[0].Request, req))
	}
}

// serveProxy serves p on a loopback port of its own until the test ends.
func serveProxy(t *testing.T, p *Proxy) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.Serve(ln) }()
	t.Cleanup(p.Stop)
	return ln.Addr().String()
}
