package capture

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	// Milvus takes requests a client compressed with gzip (and answers
	// them compressed alike); so must its proxy, which otherwise answers
	// them "Decompressor is not installed".
	_ "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// rawCodec moves messages as the bytes they are, so the proxy forwards
// every request and answer unchanged, whatever its type. It speaks gRPC's
// buffer API: a message received is copied once, into one slice, and a
// message sent is handed over without a copy.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("raw codec: %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("raw codec: %T", v)
	}
	*b = data.Materialize()
	return nil
}

// Name is "proto" for the server side, whose content type follows the
// client's.
func (rawCodec) Name() string { return "proto" }

// upstreamCodec is rawCodec with no name: gRPC then sends the content type
// "application/grpc" exactly, which Milvus's port multiplexer needs to
// tell a gRPC call from its HTTP API ("application/grpc+proto" is sent to
// the HTTP server).
type upstreamCodec struct{ rawCodec }

func (upstreamCodec) Name() string { return "" }

// Proxy is a Milvus gRPC endpoint in front of one cluster: it forwards
// every MilvusService call byte for byte (messages, status codes and
// messages, metadata), and lets the capture journal writes on the way.
type Proxy struct {
	clusterID string
	upstream  func() string // the cluster's address
	capture   *Capture
	logger    *slog.Logger
	server    *grpc.Server
	upstreams *conns // sharing the server's buffer pool

	// lookup is describeCollection, made once: the capture calls it only
	// for a collection it does not know yet.
	lookup CollectionLookup
	// keys gives keys to keyless inserts into kept-autoID collections
	// once the switch routed the cluster to its target.
	keys autoKeys
	// refused counts each refusal by method (nil: not counted).
	refused func(method string)
	// claimedBy names the migration whose target the cluster is, if it
	// is one (nil: never).
	claimedBy func() string
}

// NewProxy returns a proxy for a cluster; upstream gives its address.
func NewProxy(clusterID string, upstream func() string, capture *Capture, logger *slog.Logger) *Proxy {
	if logger == nil {
		logger = slog.Default()
	}
	pool := milvus.NewBufferPool()
	p := &Proxy{clusterID: clusterID, upstream: upstream, capture: capture, logger: logger, upstreams: newConns(pool)}
	p.server = grpc.NewServer(append(milvus.ServerOptions(pool),
		grpc.UnknownServiceHandler(p.handle),
		grpc.ForceServerCodecV2(rawCodec{}))...)
	p.lookup = p.describeCollection
	return p
}

// Serve accepts connections on ln until Stop.
func (p *Proxy) Serve(ln net.Listener) error { return p.server.Serve(ln) }

// stopGrace bounds how long Stop waits for the calls in flight: its zdmd
// keeps the lease meanwhile, and a call whose upstream never answers must
// not keep every other instance from driving.
const stopGrace = 15 * time.Second

// Stop ends the proxy after the calls in flight, cutting those still
// running after stopGrace (a write cut off is journaled as uncertain and
// repaired from the source).
func (p *Proxy) Stop() {
	stopServer(p.server, func() {
		p.logger.Warn("calls still in flight after the proxy's grace; cutting them", "cluster", p.clusterID, "grace", stopGrace)
	})
	p.upstreams.close()
}

// stopServer stops s after its calls in flight, cutting those still
// running after stopGrace (saying so with cut).
func stopServer(s *grpc.Server, cut func()) {
	stopped := make(chan struct{})
	go func() { defer close(stopped); s.GracefulStop() }()
	select {
	case <-stopped:
	case <-time.After(stopGrace):
		cut()
		s.Stop()
		<-stopped
	}
}

func (p *Proxy) conn(addr string) (*grpc.ClientConn, error) { return p.upstreams.get(addr) }

// address is where calls go: the cluster, or its target once a switch
// routed it there.
func (p *Proxy) address() string {
	if addr := p.capture.RouteOf(p.clusterID); addr != "" {
		return addr
	}
	return p.upstream()
}

// describeCollection looks a collection up on the cluster with the
// metadata of the call in ctx (the caller's credentials and database).
func (p *Proxy) describeCollection(ctx context.Context, db, name string) (string, string, error) {
	r, err := p.describe(ctx, db, name)
	if err != nil {
		return "", "", err
	}
	// Described through an alias, the schema still names the collection.
	coll, pk := r.GetSchema().GetName(), (&milvus.Collection{Schema: r.GetSchema()}).PrimaryField()
	if coll == "" || pk == nil {
		return "", "", fmt.Errorf("collection %s/%s: no name or primary key field in its description", db, name)
	}
	return coll, pk.GetName(), nil
}

// describe describes a collection on the cluster (or its target, once
// routed there) with the metadata of the call in ctx.
func (p *Proxy) describe(ctx context.Context, db, name string) (*milvuspb.DescribeCollectionResponse, error) {
	cc, err := p.conn(p.address())
	if err != nil {
		return nil, err
	}
	in, _ := metadata.FromIncomingContext(ctx)
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, outgoing(in)), 10*time.Second)
	defer cancel()
	r, err := milvuspb.NewMilvusServiceClient(cc).DescribeCollection(ctx, &milvuspb.DescribeCollectionRequest{DbName: db, CollectionName: name})
	if err := milvus.Check("describe collection "+name, r.GetStatus(), err); err != nil {
		return nil, err
	}
	return r, nil
}

// outgoing is the incoming metadata that goes upstream: the transport's
// own headers are set again by the client side.
func outgoing(in metadata.MD) metadata.MD {
	out := metadata.MD{}
	for k, v := range in {
		if !strings.HasPrefix(k, ":") && k != "content-type" && k != "user-agent" && !strings.HasPrefix(k, "grpc-") && k != relayHops {
			out[k] = v
		}
	}
	return out
}

func (p *Proxy) handle(_ any, ss grpc.ServerStream) error {
	method, req, err := receive(ss)
	if err != nil {
		return err
	}
	return p.serve(ss, nil, method, req)
}

// receive reads a call's method and its one request.
func receive(ss grpc.ServerStream) (string, []byte, error) {
	method, ok := grpc.MethodFromServerStream(ss)
	if !ok {
		return "", nil, fmt.Errorf("proxy: no method")
	}
	var req []byte
	if err := ss.RecvMsg(&req); err != nil {
		return "", nil, err
	}
	return method, req, nil
}

// serve forwards a received call through the capture and answers it; cut
// ends a write whose client went away (nil: only its own bound does).
func (p *Proxy) serve(ss grpc.ServerStream, cut context.Context, method string, req []byte) error {
	in, _ := metadata.FromIncomingContext(ss.Context())
	out := outgoing(in)
	dbHeader := ""
	if v := in.Get("dbname"); len(v) > 0 {
		dbHeader = v[0]
	}
	routed := false
	send := func(ctx context.Context, req []byte) (Sent, error) {
		// The route is read after a hold let the call go on, so held
		// writes reach the target once the switch routed there.
		addr := p.address()
		routed = addr != p.upstream() // to the target, after a switch
		cc, err := p.conn(addr)
		if err != nil {
			return Sent{}, NotSent(err)
		}
		if routed && strings.HasSuffix(method, "/Insert") {
			octx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, out), time.Minute)
			req, err = p.giveKeys(octx, milvuspb.NewMilvusServiceClient(cc), addr, dbHeader, req)
			cancel()
			if err != nil {
				return Sent{}, NotSent(&Refusal{Reason: err.Error()})
			}
		}
		var resp []byte
		var header, trailer metadata.MD
		err = cc.Invoke(metadata.NewOutgoingContext(ctx, out), method, &req, &resp,
			grpc.ForceCodecV2(upstreamCodec{}), grpc.Header(&header), grpc.Trailer(&trailer))
		if len(header) > 0 {
			_ = ss.SetHeader(header)
		}
		if len(trailer) > 0 {
			ss.SetTrailer(trailer)
		}
		return Sent{Request: req, Response: resp}, err
	}
	if p.claimedBy != nil {
		if kind, _, _ := p.capture.kindOf(method); kind != "" {
			if mig := p.claimedBy(); mig != "" {
				return p.refuse(ss, method, &Refusal{Reason: fmt.Sprintf(
					"zdm: this cluster is the target of migration %s, and until its switch only zdm writes to it; write to the source, through its proxy", mig)})
			}
		}
	}
	resp, err := p.capture.Forward(ss.Context(), Call{ClusterID: p.clusterID, Method: method, Request: req, Database: dbHeader, Lookup: p.lookup, Cut: cut}, send)
	if err != nil {
		// A refusal as the method's own answer; the upstream's status,
		// code and message as they were.
		return p.refuse(ss, method, err)
	}
	if routed && strings.HasSuffix(method, "/DescribeCollection") {
		resp = asTheSourceShowedIt(resp)
	}
	return ss.SendMsg(&resp)
}

// refuse answers a call the proxy does not pass on (or whose answer it
// does not pass on): a Refusal as the method's own answer with an error
// status, which SDKs raise at once; any other error as it is.
func (p *Proxy) refuse(ss grpc.ServerStream, method string, err error) error {
	var refused *Refusal
	if !errors.As(err, &refused) {
		return err
	}
	short := method[strings.LastIndexByte(method, '/')+1:]
	if p.refused != nil {
		p.refused(methodLabel(short))
	}
	resp, rerr := refusalResponse(short, refused)
	if rerr != nil {
		// An answer this proxy cannot shape (a method it does not know):
		// a gRPC status the SDKs raise without retrying it, as pymilvus
		// retries FAILED_PRECONDITION until its timeout.
		p.logger.Info("refused as a gRPC status", "method", method, "why", rerr)
		return status.Error(codes.PermissionDenied, refused.Reason)
	}
	return ss.SendMsg(&resp)
}

// GuardTarget has the proxy refuse what would change its cluster while
// claimedBy names a migration whose target the cluster is (R6): the
// target takes writes from zdm alone until the switch, and a write that
// reached it through its own proxy would be one the source never had.
// Reads pass. Set before it serves.
func (p *Proxy) GuardTarget(claimedBy func() string) { p.claimedBy = claimedBy }

// CountRefusals has the proxy count each call it refuses, by method. Set
// before it serves.
func (p *Proxy) CountRefusals(count func(method string)) { p.refused = count }

// SecureUpstream makes the proxy reach each upstream address (its cluster,
// or the target a switch routed it to) with the TLS that secure gives for
// it (nil: plain text).
func (p *Proxy) SecureUpstream(secure func(addr string) (*tls.Config, error)) {
	p.upstreams.secureWith(secure)
}
