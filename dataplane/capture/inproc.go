package capture

import (
	"context"
	"net"
	"sync"

	"google.golang.org/grpc"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// pipeListener hands connections made in this process to a gRPC server:
// the REST gate calls the endpoint it sits in as any gRPC client would,
// without a port or TLS of its own.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) { return acceptFrom(l.conns, l.done) }

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial makes a connection the server side accepts.
func (l *pipeListener) dial(ctx context.Context, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		client.Close()
		return nil, net.ErrClosed
	case <-ctx.Done():
		client.Close()
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "zdm-rest-gate" }

// inProcess serves s on a pipe listener and returns a client connection
// to it, closed by the returned function.
func inProcess(s *grpc.Server) (*grpc.ClientConn, func(), error) {
	l := newPipeListener()
	go func() { _ = s.Serve(l) }()
	opts := append(milvus.DialOptions(milvus.NewBufferPool()), grpc.WithContextDialer(l.dial), milvus.Transport(nil))
	cc, err := grpc.NewClient("passthrough:///zdm-rest-gate", opts...)
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	return cc, func() { cc.Close(); l.Close() }, nil
}
