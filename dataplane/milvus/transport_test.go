package milvus

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// stoppable is a listener whose connections stop reading, as those of a
// stopped process do (the kernel keeps them open), once stop is closed.
type stoppable struct {
	net.Listener
	stop chan struct{}
}

func (l *stoppable) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stoppableConn{Conn: c, stop: l.stop, closed: make(chan struct{})}, nil
}

type stoppableConn struct {
	net.Conn
	stop   chan struct{}
	once   sync.Once
	closed chan struct{}
}

func (c *stoppableConn) Read(b []byte) (int, error) {
	select {
	case <-c.stop:
		<-c.closed
		return 0, net.ErrClosed
	default:
		return c.Conn.Read(b)
	}
}

func (c *stoppableConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// A call waiting on a server that stopped answering fails once the
// connection's pings go unanswered, where it waited for ever.
func TestACallToAServerThatHangsFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &stoppable{Listener: ln, stop: make(chan struct{})}
	// Every call waits for its caller.
	srv := grpc.NewServer(grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second}),
		grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
			if err := ss.RecvMsg(&milvuspb.GetVersionRequest{}); err != nil {
				return err
			}
			<-ss.Context().Done()
			return ss.Context().Err()
		}))
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	// gRPC pings no sooner than 10 s after the last frame.
	cc, err := grpc.NewClient(ln.Addr().String(), append(dialOptions(NewBufferPool(), keepalive.ClientParameters{Time: 10 * time.Second, Timeout: time.Second}), Transport(nil))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	svc := milvuspb.NewMilvusServiceClient(cc)
	// The connection is up before the server stops reading.
	warm, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, _ = svc.GetVersion(warm, &milvuspb.GetVersionRequest{})
	cancel()
	close(l.stop)

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
