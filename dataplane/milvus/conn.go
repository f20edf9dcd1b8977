package milvus

import (
	"github.com/zdm-io/zdm/domain"

	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Endpoint is a Milvus address with its credentials.
type Endpoint struct {
	Address  string
	Username string
	Password string
	// StoragePath is the cluster's local storage as this host reaches it
	// ("": none), for the segment copy.
	StoragePath string
	// StorageS3 is the cluster's storage in an S3 bucket (nil: none), for
	// the segment copy, with its keys.
	StorageS3        *domain.S3Storage
	StorageAccessKey string
	StorageSecretKey string
	// TLS is how the server is reached (nil: plain text).
	TLS *tls.Config
	// ImportDial, when set, connects the calls about imports (see
	// uncancelled.go) to Address in place of a direct dial.
	ImportDial func(ctx context.Context, addr string) (net.Conn, error)
}

// EndpointOf is the endpoint at addr with a cluster's credentials and
// TLS.
func EndpointOf(addr string, c domain.Credentials) (Endpoint, error) {
	ep := Endpoint{Address: addr, Username: c.Username, Password: c.Password,
		StorageAccessKey: c.StorageAccessKey, StorageSecretKey: c.StorageSecretKey}
	if c.TLS != nil {
		cfg, err := c.TLS.Config()
		if err != nil {
			return Endpoint{}, fmt.Errorf("milvus %s: %w", addr, err)
		}
		ep.TLS = cfg
	}
	return ep, nil
}

// Transport is the transport security of calls to a server reached with
// cfg (nil: plain text).
func Transport(cfg *tls.Config) grpc.DialOption {
	if cfg == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(cfg))
}

// Conn is a gRPC connection to one Milvus server.
type Conn struct {
	ep      Endpoint
	cc      *grpc.ClientConn
	Svc     milvuspb.MilvusServiceClient
	imports inflight // see uncancelled.go
	// importCC carries the calls about imports when ep.ImportDial is set.
	importOnce sync.Once
	importCC   *grpc.ClientConn
	importErr  error
}

// MaxMessage bounds a gRPC message (query pages and insert batches).
const MaxMessage = 256 << 20

// Dial connects and checks that the server answers.
func Dial(ctx context.Context, ep Endpoint) (*Conn, error) {
	cc, err := grpc.NewClient(ep.Address, append(DialOptions(NewBufferPool()), Transport(ep.TLS))...)
	if err != nil {
		return nil, fmt.Errorf("milvus %s: %w", ep.Address, err)
	}
	c := &Conn{ep: ep, cc: cc, Svc: milvuspb.NewMilvusServiceClient(cc)}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Version(pctx); err != nil {
		cc.Close()
		return nil, fmt.Errorf("milvus %s does not answer: %w", ep.Address, err)
	}
	return c, nil
}

// WaitAnswer dials addr until a Milvus answers there or within passes: a
// proxy that has just been started, or a load balancer still checking
// what is behind it.
func WaitAnswer(ctx context.Context, addr string, within time.Duration) error {
	var err error
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var c *Conn
		if c, err = Dial(ctx, Endpoint{Address: addr}); err == nil {
			c.Close()
			return nil
		}
	}
	return err
}

// Close closes the connection.
func (c *Conn) Close() error {
	c.imports.wait(closeWaitsFor)
	if c.importCC != nil {
		c.importCC.Close()
	}
	return c.cc.Close()
}

// Address is the server's address.
func (c *Conn) Address() string { return c.ep.Address }

// Username is the user zdm signs in as ("": none).
func (c *Conn) Username() string { return c.ep.Username }

// StoragePath is the cluster's local storage as this host reaches it
// ("": zdm has no access to it).
func (c *Conn) StoragePath() string { return c.ep.StoragePath }

// StorageS3 is the cluster's storage in an S3 bucket (nil: none) and its
// keys.
func (c *Conn) StorageS3() (*domain.S3Storage, string, string) {
	return c.ep.StorageS3, c.ep.StorageAccessKey, c.ep.StorageSecretKey
}

// HasStorage reports whether zdm reaches the cluster's storage.
func (c *Conn) HasStorage() bool { return c.ep.StoragePath != "" || c.ep.StorageS3 != nil }

// Service is the raw MilvusService client.
func (c *Conn) Service() milvuspb.MilvusServiceClient { return c.Svc }

// In returns ctx carrying the database and the credentials, as Milvus
// clients send them.
func (c *Conn) In(ctx context.Context, db string) context.Context {
	md := metadata.MD{}
	if db != "" {
		md.Set("dbname", db)
	}
	if c.ep.Username != "" {
		md.Set("authorization", base64.StdEncoding.EncodeToString([]byte(c.ep.Username+":"+c.ep.Password)))
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// Version returns the server's version.
func (c *Conn) Version(ctx context.Context) (string, error) {
	r, err := c.Svc.GetVersion(c.In(ctx, ""), &milvuspb.GetVersionRequest{})
	if err != nil {
		return "", err
	}
	return r.GetVersion(), nil
}

// ErrServer is a Milvus status that is not success.
var ErrServer = errors.New("milvus")

// StatusError is a failed Milvus status.
type StatusError struct {
	Op     string
	Code   int32
	Reason string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("milvus %s: %s (code %d)", e.Op, e.Reason, e.Code)
}

// Unwrap returns ErrServer.
func (e *StatusError) Unwrap() error { return ErrServer }

// Check turns a Milvus status into an error.
func Check(op string, s *commonpb.Status, err error) error {
	if err != nil {
		return fmt.Errorf("milvus %s: %w", op, err)
	}
	if s == nil {
		return nil
	}
	if !StatusOK(s) {
		return &StatusError{Op: op, Code: s.GetCode() + int32(s.GetErrorCode()), Reason: s.GetReason()}
	}
	return nil
}

// NeverSent says that a call failed before it left for the upstream: gRPC
// found no connection to send it on (the server down, refusing
// connections), and answers that UNAVAILABLE with "connection error".
// Such a write did nothing, and needs no repair; taking each for a broken
// call made a source that was down for a minute leave thousands of
// uncertain writes for the applier to read back from it.
func NeverSent(err error) bool {
	// status.FromError would give a wrapped error's whole text as the
	// message; the status itself is what says where the call failed.
	var grpcErr interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &grpcErr) {
		return false
	}
	st := grpcErr.GRPCStatus()
	return st.Code() == codes.Unavailable && strings.HasPrefix(st.Message(), "connection error")
}
