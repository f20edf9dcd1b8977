package capture

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const searchMethod = "/milvus.proto.milvus.MilvusService/Search"

// holdingMilvus answers DescribeCollection at once, with schema; every
// other call is counted, told on reached, and answered only once release
// is closed (or dropped when its caller goes).
func holdingMilvus(t *testing.T, schema *schemapb.CollectionSchema) (addr string, calls *atomic.Int64, reached chan string, release chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	described, _ := proto.Marshal(&milvuspb.DescribeCollectionResponse{Schema: schema})
	calls, reached, release = &atomic.Int64{}, make(chan string, 16), make(chan struct{})
	s := grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}), grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		var req []byte
		if err := ss.RecvMsg(&req); err != nil {
			return err
		}
		m, _ := grpc.MethodFromServerStream(ss)
		if strings.HasSuffix(m, "/DescribeCollection") {
			return ss.SendMsg(&described)
		}
		calls.Add(1)
		reached <- m
		select {
		case <-release:
		case <-ss.Context().Done():
			return ss.Context().Err()
		}
		resp := []byte{}
		return ss.SendMsg(&resp)
	}))
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String(), calls, reached, release
}

// A call relayed to the driving instance when that instance dies may
// have reached the source. It is sent again to the one that drives next,
// and answered, if running it twice leaves what running it once does: a
// read, a delete, an upsert of keys the client gives. An insert, or an
// upsert into a collection whose keys the server gives (which gives its
// row a new key), is not: its client is told the call failed. The next
// driving instance may be another, or the relaying one itself.
func TestACallRelayedToALostInstanceIsSentAgainIfTwiceIsAsOnce(t *testing.T) {
	autoID := proto.Clone(benchSchema).(*schemapb.CollectionSchema)
	autoID.Fields[0].AutoID = true
	deleteReq, _ := proto.Marshal(&milvuspb.DeleteRequest{DbName: "d", CollectionName: "c", Expr: "id in [5]"})
	for _, c := range []struct {
		name      string
		method    string
		req       []byte
		schema    *schemapb.CollectionSchema
		answered  bool
		upstreams int64
		counted   string
	}{
		{"Search", searchMethod, []byte{}, benchSchema, true, 2, "resent"},
		{"Delete", "/milvus.proto.milvus.MilvusService/Delete", deleteReq, benchSchema, true, 2, "resent"},
		{"Upsert", upsertMethod, upsertOf(t, 5), benchSchema, true, 2, "resent"},
		{"UpsertAutoID", upsertMethod, upsertOf(t, 5), autoID, false, 1, "failed"},
		{"Insert", "/milvus.proto.milvus.MilvusService/Insert", insertOf(t, 5), benchSchema, false, 1, "failed"},
	} {
		for _, relayDrives := range []bool{false, true} {
			t.Run(c.name+map[bool]string{true: "/RelayDrivesNext", false: "/AnotherDrivesNext"}[relayDrives], func(t *testing.T) {
				lostRelay(t, c.method, c.req, c.schema, relayDrives, c.answered, c.upstreams, c.counted)
			})
		}
	}
}

// lostRelay relays a call of method through an instance to the driving
// one, which dies while the source holds the call; then another instance,
// or the relaying one if relayDrives, drives. The call must be answered
// or fail Unavailable as answered says, the source must have seen it
// upstreams times, and the relaying instance must count it as counted.
func lostRelay(t *testing.T, method string, req []byte, schema *schemapb.CollectionSchema, relayDrives, answered bool, upstreams int64, counted string) {
	upstream, calls, reached, release := holdingMilvus(t, schema)
	a, aAddr := drivingEndpoint(t, upstream)
	var driving atomic.Value
	driving.Store(aAddr)
	b := NewEndpoint("src", func() string { return driving.Load().(string) }, nil)
	var lost []string
	var mu sync.Mutex
	b.CountLostRelays(func(resent bool) {
		mu.Lock()
		defer mu.Unlock()
		lost = append(lost, map[bool]string{true: "resent", false: "failed"}[resent])
	})
	bAddr := serveEndpoint(t, b)

	cc, err := grpc.NewClient(bAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var resp []byte
		done <- cc.Invoke(ctx, method, &req, &resp, grpc.ForceCodecV2(upstreamCodec{}))
	}()
	select {
	case <-reached:
	case <-time.After(5 * time.Second):
		t.Fatal("the call never reached the source")
	}
	// The driving instance dies with the call, and another drives.
	driving.Store("")
	a.server.Stop()
	if relayDrives {
		capC, _ := armedCapture(t)
		b.Drive(NewProxy("src", func() string { return upstream }, capC, nil))
	} else {
		_, nextAddr := drivingEndpoint(t, upstream)
		driving.Store(nextAddr)
	}
	close(release)

	select {
	case err := <-done:
		if answered && err != nil {
			t.Fatalf("the call was not answered: %v", err)
		}
		if !answered && status.Code(err) != codes.Unavailable {
			t.Fatalf("the call: %v, want Unavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
	}
	if n := calls.Load(); n != upstreams {
		t.Fatalf("the source got the call %d times, want %d", n, upstreams)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lost) != 1 || lost[0] != counted {
		t.Fatalf("counted %v, want [%s]", lost, counted)
	}
}

// A read the driving instance answered with an error, its source's
// Unavailable included, is passed on as it is, not sent again: only a
// call the instance never answered is.
func TestAReadTheDrivingInstanceAnsweredIsNotSentAgain(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	capA, _ := armedCapture(t)
	a := NewEndpoint("src", func() string { return "" }, nil)
	aAddr := serveEndpoint(t, a)
	a.Drive(NewProxy("src", func() string { return down }, capA, nil))
	var relays, lost atomic.Int64
	b := NewEndpoint("src", func() string { relays.Add(1); return aAddr }, nil)
	b.CountLostRelays(func(bool) { lost.Add(1) })
	bAddr := serveEndpoint(t, b)
	cc, err := grpc.NewClient(bAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), relayWait+5*time.Second)
	defer cancel()
	req, resp := []byte{}, []byte(nil)
	var header, trailer metadata.MD
	err = cc.Invoke(ctx, searchMethod, &req, &resp, grpc.ForceCodecV2(upstreamCodec{}), grpc.Header(&header), grpc.Trailer(&trailer))
	if err == nil {
		t.Fatal("a search of a source that is down was answered")
	}
	if n := relays.Load(); n != 1 {
		t.Fatalf("the search was relayed %d times, want once: %v", n, err)
	}
	if n := lost.Load(); n != 0 {
		t.Fatalf("an answered call was counted lost %d times", n)
	}
	if len(trailer.Get(relayAnswered)) > 0 || len(header.Get(relayAnswered)) > 0 {
		t.Fatalf("the client was given the relay's own mark: %v %v", header, trailer)
	}
}

// drivingEndpoint serves an endpoint that drives, with an armed capture
// of its own, in front of upstream.
func drivingEndpoint(t *testing.T, upstream string) (*Endpoint, string) {
	t.Helper()
	c, _ := armedCapture(t)
	e := NewEndpoint("src", func() string { return "" }, nil)
	addr := serveEndpoint(t, e)
	e.Drive(NewProxy("src", func() string { return upstream }, c, nil))
	return e, addr
}
