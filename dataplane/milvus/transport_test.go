package milvus

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/zdm-io/zdm/nettest"
)

// A call waiting on a server that stopped answering fails once the
// connection's pings go unanswered, where it waited for ever.
func TestACallToAServerThatHangsFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Every call waits for its caller.
	srv := grpc.NewServer(grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second}),
		grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
			if err := ss.RecvMsg(&milvuspb.GetVersionRequest{}); err != nil {
				return err
			}
			<-ss.Context().Done()
			return ss.Context().Err()
		}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	relay := nettest.NewRelay(t, ln.Addr().String())
	// gRPC pings no sooner than 10 s after the last frame.
	cc, err := grpc.NewClient(relay.Addr(), append(dialOptions(NewBufferPool(), keepalive.ClientParameters{Time: 10 * time.Second, Timeout: time.Second}), Transport(nil))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	svc := milvuspb.NewMilvusServiceClient(cc)
	// The connection is up before the server hangs.
	warm, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, _ = svc.GetVersion(warm, &milvuspb.GetVersionRequest{})
	cancel()
	relay.Hang()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	began := time.Now()
	_, err = svc.GetVersion(ctx, &milvuspb.GetVersionRequest{})
	took := time.Since(began)
	if status.Code(err) != codes.Unavailable || took > 20*time.Second {
		t.Fatalf("a call to a server that hangs: %v after %s, want Unavailable within the keepalive's 11 s", err, took.Round(time.Millisecond))
	}
	t.Logf("failed after %s: %v", took.Round(time.Millisecond), err)
}
