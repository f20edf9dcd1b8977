package capture

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// A call is relayed at most once, by the instance the client reached, to
// the one its view says drives. An instance a relayed call reaches serves
// it if it drives and sends it back unsent otherwise: it neither passes
// the call on, from a view that may be as far behind as the one that sent
// it there, nor holds it for long until it drives itself. Views are
// behind for a moment whenever the lease changes hands, and more after a
// NATS node is lost (a lease watch waits for its heartbeats to fail); two
// such views holding a call between them kept a client's write waiting
// for the whole relayWait while a third instance drove.

// relayedWait bounds how long a relayed call waits for this instance's
// term to start (see serveRelayed).
const relayedWait = time.Second

// relayOutcome is how a relayed call ended.
type relayOutcome int

const (
	relayServed   relayOutcome = iota // by the instance, status and all
	relayLost                         // with the connection, unanswered
	relayReturned                     // unsent, by an instance that does not drive
)

// serveRelayed serves a call another instance relayed here once this one
// drives. It sends the call back at once if another instance drives, as
// this one sees it, and after relayedWait if this one still does not
// drive: it only waits here for a term that is about to start (the lease
// taken, the proxies not yet armed), which spares the instance that
// relayed it a look a relayPoll later.
func (e *Endpoint) serveRelayed(ss grpc.ServerStream, method string, req []byte) error {
	ctx := ss.Context()
	giveUp := time.NewTimer(relayedWait)
	defer giveUp.Stop()
	var ended *drive
	for {
		d, changed := e.take()
		if d != nil && (d == ended || !d.proxy.capture.inTerm()) {
			d.calls.Done()
			d = nil
		}
		if d != nil {
			err := e.serveHere(ctx, ss, d, method, req, nil)
			if !unsentAtEnd(err) {
				ss.SetTrailer(metadata.Pairs(relayAnswered, "1"))
				return err
			}
			ended = d
		} else if e.driving() != "" {
			return e.sendBack(ss)
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-giveUp.C:
			return e.sendBack(ss)
		case <-changed:
		case <-time.After(relayPoll):
		}
	}
}

// sendBack answers a relayed call unsent.
func (e *Endpoint) sendBack(ss grpc.ServerStream) error {
	ss.SetTrailer(metadata.Pairs(relaySentBack, "1"))
	return status.Errorf(codes.Unavailable, "zdm: this zdmd does not drive the migrations of cluster %s", e.clusterID)
}

// relay passes a call to the driving instance's endpoint and its answer
// back, status and metadata as they were. Lost or sent back, nothing was
// given to the client, and the call may be sent again.
func (e *Endpoint) relay(ss grpc.ServerStream, cc *grpc.ClientConn, method string, req []byte) (relayOutcome, error) {
	var resp []byte
	var header, trailer metadata.MD
	err := cc.Invoke(relayedContext(ss.Context()), method, &req, &resp,
		grpc.ForceCodecV2(upstreamCodec{}), grpc.Header(&header), grpc.Trailer(&trailer))
	if outcome := outcomeOf(ss.Context(), err, trailer); outcome != relayServed {
		return outcome, err
	}
	trailer.Delete(relayAnswered)
	if len(header) > 0 {
		_ = ss.SetHeader(header)
	}
	if len(trailer) > 0 {
		ss.SetTrailer(trailer)
	}
	if err != nil {
		return relayServed, err
	}
	return relayServed, ss.SendMsg(&resp)
}

// relayedContext is ctx, a call's, made the context of the same call
// relayed: its client's metadata, marked relayed.
func relayedContext(ctx context.Context) context.Context {
	in, _ := metadata.FromIncomingContext(ctx)
	out := outgoing(in)
	out.Set(relayHops, "1")
	return metadata.NewOutgoingContext(ctx, out)
}

// outcomeOf tells how a relayed call ended from its error and trailer,
// while ctx, its client's, is live: an UNAVAILABLE the instance did not
// mark answered came from the connection, or with the call sent back.
func outcomeOf(ctx context.Context, err error, trailer metadata.MD) relayOutcome {
	switch {
	case err == nil || status.Code(err) != codes.Unavailable || len(trailer.Get(relayAnswered)) > 0 || ctx.Err() != nil:
		return relayServed
	case len(trailer.Get(relaySentBack)) > 0:
		return relayReturned
	default:
		return relayLost
	}
}
