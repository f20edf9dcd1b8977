package capture

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/zdm-io/zdm/eventstore"
)

// serveEndpoint serves e on a loopback port until the test ends.
func serveEndpoint(t *testing.T, e *Endpoint) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.Serve(ln) }()
	t.Cleanup(e.Stop)
	return ln.Addr().String()
}

// callUpsert sends an upsert of key to addr as a client would.
func callUpsert(t *testing.T, ctx context.Context, addr string, key int64) error {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	req, resp := upsertOf(t, key), []byte(nil)
	return cc.Invoke(ctx, upsertMethod, &req, &resp, grpc.ForceCodecV2(upstreamCodec{}))
}

// A call that reaches an instance that does not drive is relayed to the
// one that does; one that comes while none drives waits for one to start
// instead of failing (at the instance about to drive, if it is known),
// and is captured once it does.
func TestACallWaitsForAnInstanceToDriveAndIsRelayedToIt(t *testing.T) {
	c, _ := armedCapture(t)
	upstream := fakeMilvus(t)
	driver := NewEndpoint("src", func() string { return "" }, nil)
	driverAddr := serveEndpoint(t, driver)
	relay := NewEndpoint("src", func() string { return driverAddr }, nil)
	var sentBack atomic.Int64
	relay.LookAgainWhenSentBack(func() { sentBack.Add(1) })
	relayAddr := serveEndpoint(t, relay)

	answered := make(chan error, 1)
	go func() { answered <- callUpsert(t, context.Background(), relayAddr, 7) }()
	select {
	case err := <-answered:
		t.Fatalf("answered before any instance drove: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	p := NewProxy("src", func() string { return upstream }, c, nil)
	driver.Drive(p)
	select {
	case err := <-answered:
		if err != nil {
			t.Fatalf("relayed call: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting call was not relayed once an instance drove")
	}
	// The instance about to drive (its view says it does) held the call
	// for its term rather than sending it back to look again.
	if n := sentBack.Load(); n != 0 {
		t.Fatalf("the instance about to drive sent the call back %d times", n)
	}
	if err := callUpsert(t, context.Background(), relayAddr, 8); err != nil {
		t.Fatal(err)
	}
	// Both writes went through the one capture, in order.
	entries := journaledIn(t, c)
	if len(entries) != 2 {
		t.Fatalf("journaled %d writes, want 2", len(entries))
	}

	// The term ends: calls wait again rather than being captured by it.
	driver.Release(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	if err := callUpsert(t, ctx, relayAddr, 9); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("a call while no instance drives: %v, want it to wait until its deadline", err)
	}
	if entries := journaledIn(t, c); len(entries) != 2 {
		t.Fatalf("a released term captured a write: %d entries", len(entries))
	}
}

// Two instances that each see the other as driving (while the lease
// changes hands) pass a call between them a bounded number of times.
func TestARelayedCallIsNotPassedAroundForever(t *testing.T) {
	var a, b atomic.Value
	a.Store("")
	b.Store("")
	var hops atomic.Int64
	ea := NewEndpoint("src", func() string { hops.Add(1); return b.Load().(string) }, nil)
	eb := NewEndpoint("src", func() string { hops.Add(1); return a.Load().(string) }, nil)
	a.Store(serveEndpoint(t, ea))
	b.Store(serveEndpoint(t, eb))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := callUpsert(t, ctx, a.Load().(string), 1); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("call between two relays: %v, want it to wait until its deadline", err)
	}
	// a relays to b, which sees a drive and sends the call back; a looks
	// again every relayPoll.
	if n := hops.Load(); n > 2*int64(time.Second/relayPoll)+2 {
		t.Fatalf("the relays looked for a driver %d times in a second: the call went round", n)
	}
}

// journaledIn returns what c journaled for d/c of migration m-1.
func journaledIn(t *testing.T, c *Capture) []Entry {
	t.Helper()
	j, ok := c.journal.(*eventstore.Journal)
	if !ok {
		t.Fatalf("journal %T cannot be read", c.journal)
	}
	return journaled(t, j)
}

// A nudge (another instance began to drive) wakes the calls waiting for
// a driver at once, rather than at their next look.
func TestANudgeWakesTheCallsWaitingForADriver(t *testing.T) {
	e := NewEndpoint("c-1", func() string { return "" }, nil)
	d, changed := e.take()
	if d != nil {
		t.Fatal("an endpoint no term drives gave a term")
	}
	select {
	case <-changed:
		t.Fatal("woken before any change")
	default:
	}
	e.Nudge()
	select {
	case <-changed:
	default:
		t.Fatal("a nudge did not wake the waiting calls")
	}
}

// A call relayed to an instance that does not drive goes back at once to
// the instance that relayed it, which looks again who drives. It is
// neither passed on from a view as stale as the one that sent it there
// nor held there for the whole wait: a and b each see the other drive (as
// two views behind a change of driver do), and only a learns, 300 ms in,
// which instance drives.
func TestACallRelayedToAnInstanceThatDoesNotDriveGoesBackToLookAgain(t *testing.T) {
	c, _ := armedCapture(t)
	upstream := fakeMilvus(t)
	driver := NewEndpoint("src", func() string { return "" }, nil)
	driverAddr := serveEndpoint(t, driver)
	driver.Drive(NewProxy("src", func() string { return upstream }, c, nil))

	var a, b atomic.Value
	a.Store("")
	b.Store("")
	learned := time.Now().Add(300 * time.Millisecond)
	ea := NewEndpoint("src", func() string {
		if time.Now().After(learned) {
			return driverAddr
		}
		return b.Load().(string)
	}, nil)
	eb := NewEndpoint("src", func() string { return a.Load().(string) }, nil)
	a.Store(serveEndpoint(t, ea))
	b.Store(serveEndpoint(t, eb))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sent := time.Now()
	if err := callUpsert(t, ctx, a.Load().(string), 1); err != nil {
		t.Fatalf("a call relayed to an instance that does not drive: %v, after %s", err, time.Since(sent))
	}
	if entries := journaledIn(t, c); len(entries) != 1 {
		t.Fatalf("journaled %d writes, want 1", len(entries))
	}
}
