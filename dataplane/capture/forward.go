package capture

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// Call is one call a client made to the proxy.
type Call struct {
	ClusterID string
	// Method is the full gRPC method ("/milvus.proto.milvus.MilvusService/Insert").
	Method  string
	Request []byte
	// Database is the call's dbname header ("" for the default).
	Database string
	// Lookup resolves a write's collection (nil: every write claims its
	// whole collection, and aliases are journaled as named).
	Lookup CollectionLookup
	// Cut ends a write or DDL on its way to the cluster once its client
	// went away (nil: only sendPatience does).
	Cut context.Context
}

// sendPatience bounds a write or DDL on its way to the cluster once its
// client went away.
const sendPatience = time.Minute

// Sent is a call as it went to the cluster, and the cluster's answer.
type Sent struct {
	// Request is what was sent: it may differ from the call's (keys given
	// to a keyless insert after the switch).
	Request  []byte
	Response []byte
}

// Send takes a call to the cluster, once a hold let it go on. An error
// wrapped by NotSent, or one that says the call had no connection to go
// on, means the call never left: it did nothing.
type Send func(ctx context.Context, req []byte) (Sent, error)

// notSent marks a call that never left for the cluster.
type notSent struct{ err error }

func (e notSent) Error() string { return e.err.Error() }
func (e notSent) Unwrap() error { return e.err }

// NotSent wraps the error of a call that never left for the cluster.
func NotSent(err error) error { return notSent{err} }

// unsentAtTermEnd is the error of a write or DDL this zdmd did not send
// because its term ended first: nothing reached the source, so the
// endpoint gives it to whichever instance drives next instead of failing
// it (a lost lease while a NATS node's election runs ends a term that the
// same instance often starts again a second later).
type unsentAtTermEnd struct{ st *status.Status }

func (e unsentAtTermEnd) Error() string              { return e.st.Err().Error() }
func (e unsentAtTermEnd) GRPCStatus() *status.Status { return e.st }

func termEnded(migrationID, method string) error {
	return unsentAtTermEnd{status.Newf(codes.Unavailable, "zdm: this zdmd stopped driving migration %s before the %s was sent; retry it", migrationID, method)}
}

// unsentAtEnd reports whether err is a call's that its term's end kept
// from leaving.
func unsentAtEnd(err error) bool { return errors.As(err, new(unsentAtTermEnd)) }

// Forward runs one call through the capture, so that no caller can get
// the protocol wrong: the call is refused if a migration forbids it, held
// while the switch holds writes, and waits for writes of the same keys;
// then send takes it to the cluster; a write the cluster acknowledged is
// journaled before its answer is returned (also when its client went
// away), one broken off on its way or whose answer says the server
// stopped waiting for it is journaled as uncertain, and one that never
// left is forgotten. An answer is returned only for a write the journal
// holds. Errors are a Refusal (the proxy answers it as the method's own
// answer) or send's error as it was.
func (c *Capture) Forward(ctx context.Context, call Call, send Send) ([]byte, error) {
	k, err := c.before(ctx, call.ClusterID, call.Method, call.Request, call.Database, call.Lookup)
	if err != nil {
		return nil, err
	}
	changes := k.a != nil && (k.kind == "write" || k.kind == "ddl") // of a captured migration
	if changes && !c.inTerm() {
		// The lease was lost, maybe while the write waited: another zdmd
		// may drive already, and its applier may have read past this
		// write's entry. Nothing is sent; the client tries again and
		// reaches the one that drives.
		c.unsent(ctx, k)
		return nil, termEnded(k.a.migrationID, k.method)
	}
	sendCtx := ctx
	if changes {
		// A client that goes away does not take its write back: the
		// source may apply it whenever its request arrived. Cut off, it
		// would be repaired from the source's rows before the source had
		// applied it, and its keys given to the next write while it may
		// still land after that one. Sent on, its outcome is known, and
		// journaled in its place.
		var cancel context.CancelFunc
		sendCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), sendPatience)
		defer cancel()
		if call.Cut != nil {
			defer context.AfterFunc(call.Cut, cancel)()
		}
	}
	sent, err := send(sendCtx, call.Request)
	if err != nil {
		var ns notSent
		switch {
		case errors.As(err, &ns):
			c.unsent(ctx, k)
			return nil, ns.err
		case milvus.NeverSent(err):
			c.unsent(ctx, k)
		default:
			c.broken(ctx, k)
		}
		return nil, err
	}
	if err := c.after(ctx, k, sent.Request, sent.Response); err != nil {
		return nil, err
	}
	return sent.Response, nil
}
