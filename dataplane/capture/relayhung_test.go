package capture

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// freezer forwards connections to to, and passes nothing either way while
// frozen: a process stopped with its sockets open, which the kernel keeps
// accepting bytes for.
type freezer struct {
	to     string
	frozen atomic.Bool
}

func (f *freezer) serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var open sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		f.frozen.Store(false)
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		open.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", f.to)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			open.Add(2)
			go f.pass(&open, up, c)
			go f.pass(&open, c, up)
		}
	}()
	return ln.Addr().String()
}

func (f *freezer) pass(open *sync.WaitGroup, dst io.Writer, src io.Reader) {
	defer open.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for f.frozen.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// A driving instance that hangs, its connections still open, leaves the
// calls relayed to it waiting for no answer. Another instance drives
// after the lease's TTL; the relaying one gives the hung one up within
// about 15 s (its keepalive) and sends a read it relayed there to the next,
// where it is answered: not after the 40 s a Milvus connection waits.
func TestACallRelayedToAHungInstanceIsSentToTheNextWithinSeconds(t *testing.T) {
	upstream, calls, reached, release := holdingMilvus(t, benchSchema)
	_, hung := drivingEndpoint(t, upstream)
	f := &freezer{to: hung}
	aAddr := f.serve(t)
	var driving atomic.Value
	driving.Store(aAddr)
	b := NewEndpoint("src", func() string { return driving.Load().(string) }, nil)
	var resent atomic.Int64
	b.CountLostRelays(func(again bool) {
		if again {
			resent.Add(1)
		}
	})
	cc, err := grpc.NewClient(serveEndpoint(t, b), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	done := make(chan error, 1)
	began := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		req, resp := []byte{}, []byte(nil)
		done <- cc.Invoke(ctx, searchMethod, &req, &resp, grpc.ForceCodecV2(upstreamCodec{}))
	}()
	select {
	case <-reached:
	case <-time.After(5 * time.Second):
		t.Fatal("the search never reached the source")
	}
	// The driving instance hangs with the call; another drives.
	f.frozen.Store(true)
	_, nextAddr := drivingEndpoint(t, upstream)
	driving.Store(nextAddr)
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the search was not answered: %v", err)
		}
		t.Logf("answered %.1fs after it was sent", time.Since(began).Seconds())
	case <-time.After(25 * time.Second):
		t.Fatal("no answer 25 s after the driving instance hung")
	}
	if n, r := calls.Load(), resent.Load(); n != 2 || r != 1 {
		t.Fatalf("the source got the search %d times and it was sent again %d times, want 2 and 1", n, r)
	}
}
