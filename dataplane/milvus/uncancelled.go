package milvus

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
)

// Milvus 2.3's proxy answers Import, GetImportState and ListImportTasks by
// calling its root coordinator, and when that call fails it sets a field
// of the nil answer: the whole server dies. A client that cancels such a
// call makes it fail ("context canceled" in the server's log, then "panic:
// runtime error: invalid memory address" in Proxy.GetImportState), which
// took the test bed's target down when a copy stopped while it waited for
// an import. zdm therefore never cancels these calls: each runs to its
// answer on a context of its own, a caller that stops waiting leaves it
// running, and Close waits for the calls still running (up to
// closeWaitsFor) before it closes the connection, which would cancel them
// too. A killed zdmd cannot wait: given an ImportDial (the service gives
// one through dataplane/milvus/linger), these calls go through a relay
// process that keeps the server's side open until it has answered.

// closeWaitsFor bounds how long Close waits for import calls to answer.
const closeWaitsFor = 30 * time.Second

// inflight counts a connection's import calls still running.
type inflight struct{ wg sync.WaitGroup }

// wait returns once no call runs, or after d.
func (f *inflight) wait(d time.Duration) {
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// importService is the client for calls about imports: through
// ep.ImportDial when it is set, so that the server sees no call broken off
// even when this process dies (dataplane/milvus/linger).
func (c *Conn) importService() (milvuspb.MilvusServiceClient, error) {
	if c.ep.ImportDial == nil {
		return c.Svc, nil
	}
	c.importOnce.Do(func() {
		c.importCC, c.importErr = grpc.NewClient(c.ep.Address,
			append(DialOptions(NewBufferPool()), Transport(c.ep.TLS), grpc.WithContextDialer(c.ep.ImportDial))...)
	})
	if c.importErr != nil {
		return nil, fmt.Errorf("milvus %s: %w", c.ep.Address, c.importErr)
	}
	return milvuspb.NewMilvusServiceClient(c.importCC), nil
}

// uncancelled runs call on a context that keeps ctx's values but is never
// cancelled, and returns its answer, or ctx's error as soon as ctx ends.
func uncancelled[T any](ctx context.Context, c *Conn, call func(context.Context, milvuspb.MilvusServiceClient) (T, error)) (T, error) {
	type answer struct {
		v   T
		err error
	}
	svc, err := c.importService()
	if err != nil {
		var zero T
		return zero, err
	}
	done := make(chan answer, 1)
	c.imports.wg.Add(1)
	go func() {
		defer c.imports.wg.Done()
		v, err := call(context.WithoutCancel(ctx), svc)
		done <- answer{v, err}
	}()
	select {
	case a := <-done:
		return a.v, a.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
