package capture

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// Every zdmd serves every cluster's endpoint, for as long as it runs; only
// the one that drives the migrations captures. The others relay each call
// to it, byte for byte: one capture orders every write of a cluster, so
// writes of the same keys through different instances reach the journal,
// and the target, in the order the source applied them, and one hold
// covers every write during a switch. An application's connection to any
// instance keeps working when another dies: its calls wait, up to
// relayWait, for an instance to drive again instead of being refused.

const (
	// relayHops is the metadata key that marks a relayed call: the
	// instance it reaches serves it only if it drives (relayed.go).
	relayHops = "zdm-relay-hops"
	// relayAnswered is the trailer an instance sets on every relayed call
	// it answers: a relayed call that ends without it ended with the
	// connection to the instance, which never answered it.
	relayAnswered = "zdm-relay-answered"
	// relaySentBack is the trailer of a relayed call an instance that
	// does not drive sent back unsent.
	relaySentBack = "zdm-relay-sent-back"
	// relayWait bounds how long a call waits for an instance to drive.
	relayWait = 10 * time.Second
	// relayPoll is how often a waiting call looks again.
	relayPoll = 100 * time.Millisecond
	// connectWait is how long a relay waits for a connection to the
	// driving instance before it looks again who drives.
	connectWait = 300 * time.Millisecond
)

// Endpoint is one cluster's Milvus endpoint on one zdmd.
type Endpoint struct {
	clusterID string
	// driving is the address of the endpoint of the instance that drives
	// the migrations, "" if none is known or it is this one.
	driving func() string
	logger  *slog.Logger
	server  *grpc.Server
	drivers *conns // to the driving instances, sharing the server's buffer pool

	// rest answers Milvus's RESTful API (see rest.go): through the gate
	// CarryREST set, which calls this endpoint in process (closed by
	// closeGate), or with a refusal; refused counts the calls refused.
	rest      *http.Server
	gate      Gate
	closeGate func()
	refused   func(method string)
	// lost counts the relayed calls the driving instance died with.
	lost func(resent bool)
	// sentBack is told that a relayed call came back unsent: the view of
	// who drives that driving gives is behind.
	sentBack func()

	mu      sync.Mutex
	term    *drive
	changed chan struct{} // closed when a term starts or ends here
}

// drive is one term's capture proxy and the calls it serves.
type drive struct {
	proxy *Proxy
	calls sync.WaitGroup
	cut   context.Context
	stop  context.CancelFunc
}

// relayKeepalive pings a driving instance that sent nothing for 10 s
// while calls wait on it (gRPC's shortest interval), and gives up 5 s
// later. A driving instance that hangs (its process stopped, a paused
// VM) still has its connections answered by the kernel, so the calls
// relayed to it waited for the Milvus connections' keepalive, 40 s,
// though another instance drives after ha.lease_ttl. Given up, they are
// sent again to the next where that is safe (resend.go), or fail.
func relayKeepalive() grpc.DialOption {
	return grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second})
}

// NewEndpoint returns a cluster's endpoint; driving says where to relay.
func NewEndpoint(clusterID string, driving func() string, logger *slog.Logger) *Endpoint {
	if logger == nil {
		logger = slog.Default()
	}
	pool := milvus.NewBufferPool()
	// An instance restarted at the same address is found again at once,
	// not after gRPC's default second of backoff.
	reconnect := grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: time.Second,
		Backoff: backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, MaxDelay: time.Second}})
	e := &Endpoint{clusterID: clusterID, driving: driving, logger: logger, drivers: newConns(pool, reconnect, relayKeepalive()), changed: make(chan struct{})}
	e.server = grpc.NewServer(append(milvus.ServerOptions(pool),
		grpc.UnknownServiceHandler(e.handle),
		grpc.ForceServerCodecV2(rawCodec{}))...)
	return e
}

// CountRefusals makes the endpoint count the REST calls it refuses.
func (e *Endpoint) CountRefusals(count func(method string)) { e.refused = count }

// CountLostRelays makes the endpoint count the relayed calls the driving
// instance died with: resent for a call sent again, else a write failed.
func (e *Endpoint) CountLostRelays(count func(resent bool)) { e.lost = count }

// LookAgainWhenSentBack has the endpoint call f each time an instance it
// relayed a call to sent it back, not driving: driving's view is behind,
// and its next answer should be read afresh.
func (e *Endpoint) LookAgainWhenSentBack(f func()) { e.sentBack = f }

// Gate makes the handler of Milvus's RESTful API from a gRPC connection
// to the endpoint itself; notCarried answers the calls it does not carry.
type Gate func(cc *grpc.ClientConn, notCarried http.Handler) http.Handler

// CarryREST has the endpoint carry Milvus's RESTful API through gate: its
// calls become gRPC calls to this endpoint, captured, held and routed as
// an SDK's are. Set before Serve; without it every REST call is refused.
func (e *Endpoint) CarryREST(gate Gate) { e.gate = gate }

// Serve accepts connections on ln until Stop: gRPC calls, and REST calls,
// carried by the gate or refused with an error that says why. Serve once.
func (e *Endpoint) Serve(ln net.Listener) error {
	split := newSplitListener(ln, e.logger)
	refusal := refusalHandler(e.clusterID, e.gate != nil, e.logger, e.refused)
	h := http.Handler(refusal)
	if e.gate != nil {
		cc, closeGate, err := inProcess(e.server)
		if err != nil {
			split.Close()
			return fmt.Errorf("rest gate of cluster %s: %w", e.clusterID, err)
		}
		e.mu.Lock()
		e.closeGate = closeGate
		e.mu.Unlock()
		h = e.gate(cc, refusal)
	}
	e.mu.Lock()
	e.rest = restServer(h, e.logger)
	e.mu.Unlock()
	go func() { _ = e.rest.Serve(restListener{split}) }()
	return e.server.Serve(split)
}

// Stop ends the endpoint after the calls in flight (cut after stopGrace).
func (e *Endpoint) Stop() {
	e.mu.Lock()
	if e.rest != nil {
		e.rest.Close()
	}
	e.mu.Unlock()
	stopServer(e.server, func() {
		e.logger.Warn("calls still in flight when the endpoint stopped; cutting them", "cluster", e.clusterID, "grace", stopGrace)
	})
	e.mu.Lock()
	if e.closeGate != nil {
		e.closeGate()
	}
	e.mu.Unlock()
	e.drivers.close()
}

// Drive sends the calls that come from now on through p, this term's
// capture proxy.
func (e *Endpoint) Drive(p *Proxy) {
	cut, stop := context.WithCancel(context.Background())
	e.mu.Lock()
	defer e.mu.Unlock()
	e.term = &drive{proxy: p, cut: cut, stop: stop}
	e.wake()
}

// Release ends the term: calls that come from now on are relayed, and it
// returns once the term's calls are answered, cutting those still running
// after grace (a write cut off is journaled as uncertain and repaired).
func (e *Endpoint) Release(grace time.Duration) {
	e.mu.Lock()
	d := e.term
	e.term = nil
	e.wake()
	e.mu.Unlock()
	if d == nil {
		return
	}
	defer d.stop()
	done := make(chan struct{})
	go func() { defer close(done); d.calls.Wait() }()
	select {
	case <-done:
	case <-time.After(grace):
		e.logger.Warn("calls still in flight when this zdmd stopped driving; cutting them", "cluster", e.clusterID, "grace", grace)
		d.stop()
		<-done
	}
}

// serveHere serves a call with this instance's term d, counted in its
// calls until it ends.
func (e *Endpoint) serveHere(ctx context.Context, ss grpc.ServerStream, d *drive, method string, req []byte, lostUpsert error) error {
	defer d.calls.Done()
	if lostUpsert != nil && !e.upsertAgain(e.keysOfItsOwnHere(ctx, d.proxy, req)) {
		return lostUpsert
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(d.cut, cancel)()
	return d.proxy.serve(cutStream{ServerStream: ss, ctx: cctx}, d.cut, method, req)
}

// Nudge wakes the calls waiting for an instance to drive: another began to.
func (e *Endpoint) Nudge() { e.mu.Lock(); e.wake(); e.mu.Unlock() }

// wake tells waiting calls that the term changed; mu is held.
func (e *Endpoint) wake() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// take returns this term's proxy with the call counted (nil: none), and
// a channel closed when a term starts or ends.
func (e *Endpoint) take() (*drive, <-chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.term != nil {
		e.term.calls.Add(1)
	}
	return e.term, e.changed
}

func (e *Endpoint) handle(_ any, ss grpc.ServerStream) error {
	method, req, err := receive(ss)
	if err != nil {
		return err
	}
	ctx := ss.Context()
	if in, ok := metadata.FromIncomingContext(ctx); ok && len(in.Get(relayHops)) > 0 {
		return e.serveRelayed(ss, method, req)
	}
	giveUp := time.NewTimer(relayWait)
	defer giveUp.Stop()
	// lostUpsert is the error of an upsert the driving instance died
	// with, sent again only once the next one says its collection's keys
	// are given by the client.
	var lostUpsert error
	// ended is a term whose capture kept this call from leaving as the
	// term ended: while the endpoint still serves it and the capture is
	// out of its term (its lease lapsed by the clock, its end not yet
	// run), the call waits for the next term, here or elsewhere.
	var ended *drive
	for {
		d, changed := e.take()
		if d != nil && d == ended && !d.proxy.capture.inTerm() {
			d.calls.Done()
			d = nil
		}
		if d != nil {
			// This instance drives now; it asks the cluster itself.
			err := e.serveHere(ctx, ss, d, method, req, lostUpsert)
			if !unsentAtEnd(err) {
				return err
			}
			e.logger.Info("this zdmd stopped driving before a call left; it goes to whichever drives next", "cluster", e.clusterID, "method", method)
			ended = d
			giveUp.Reset(relayWait)
			continue
		}
		if addr := e.driving(); addr != "" {
			if cc := e.ready(ctx, addr); cc != nil {
				if lostUpsert != nil {
					// Unreached, the next one went too: look again who
					// drives.
					if own, reached := e.keysOfItsOwn(ss.Context(), cc, req); reached {
						if !e.upsertAgain(own) {
							return lostUpsert
						}
						lostUpsert = nil
					}
				}
				if lostUpsert == nil {
					sent := time.Now()
					switch outcome, err := e.relay(ss, cc, method, req); outcome {
					case relayServed:
						return err
					case relayReturned:
						// Nothing was sent: the view of who drives was
						// behind, and is read again at the next look. A
						// call sent back only as the term it waited in
						// ended (held by a switch) waits anew, as here.
						if e.sentBack != nil {
							e.sentBack()
						}
						if time.Since(sent) > connectWait {
							giveUp.Reset(relayWait)
						}
					case relayLost:
						// The wait for an instance to drive starts again:
						// the call may have been relayed for longer than
						// relayWait (a long search, a driving instance
						// that hung until its keepalive gave up).
						giveUp.Reset(relayWait)
						// The driving instance went with the call, which
						// may have reached the source. One that leaves the
						// same rows whether it ran once or twice is sent
						// again to whichever drives next; any other fails,
						// as it would have with the source's own proxy.
						switch again(method) {
						case always:
							e.countLost(true)
							e.logger.Info("the driving zdmd was lost with a relayed call; sending it again", "cluster", e.clusterID, "method", method, "err", err)
						case ifKeysOfItsOwn:
							lostUpsert = err
						default:
							e.countLost(false)
							return err
						}
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-giveUp.C:
			if lostUpsert != nil {
				e.countLost(false)
				return lostUpsert
			}
			return status.Errorf(codes.Unavailable, "zdm: no zdmd instance drives the migrations of cluster %s; none took over within %s", e.clusterID, relayWait)
		case <-changed:
		case <-time.After(relayPoll):
		}
	}
}

// ready returns a connection to addr once it is ready, or nil if it is
// not within connectWait: nothing was sent on it then, so the call can go
// to whichever instance drives next.
func (e *Endpoint) ready(ctx context.Context, addr string) *grpc.ClientConn {
	cc, err := e.drivers.get(addr)
	if err != nil {
		e.logger.Warn("cannot dial the driving zdmd", "cluster", e.clusterID, "address", addr, "err", err)
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, connectWait)
	defer cancel()
	for {
		switch s := cc.GetState(); s {
		case connectivity.Ready:
			return cc
		case connectivity.TransientFailure:
			cc.ResetConnectBackoff()
			fallthrough
		default:
			cc.Connect()
			if !cc.WaitForStateChange(wctx, s) {
				return nil
			}
		}
	}
}

// cutStream is a call's stream whose context also ends when its term's
// calls are cut.
type cutStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s cutStream) Context() context.Context { return s.ctx }
