package capture

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// Milvus's SDKs ping idle connections (pymilvus every 55 s, the Node.js
// SDK every 10 s, with or without calls), and Milvus lets them: it only
// minds pings closer than 5 s. gRPC's default would close such a
// connection with "too many pings" after three of them, failing the calls
// on it; the proxy must be as patient as the server it stands for.
func TestTheProxyKeepsAConnectionItsClientPingsAsMilvusAllows(t *testing.T) {
	addr := serveProxy(t, NewProxy("src", func() string { return fakeMilvus(t) }, NewCapture(nil, nil, nil), nil))
	// 10 s is the shortest ping interval gRPC's Go client keeps.
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	req, resp := []byte(nil), []byte(nil)
	if err := cc.Invoke(context.Background(), "/milvus.proto.milvus.MilvusService/GetVersion", &req, &resp, grpc.ForceCodecV2(upstreamCodec{})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Second)
	defer cancel()
	// gRPC hands calls the ready connection before it reports the state
	// READY, so a call can end while the state still reads CONNECTING: a
	// busy machine showed it. The watch starts from READY.
	for state := cc.GetState(); state != connectivity.Ready; state = cc.GetState() {
		if !cc.WaitForStateChange(ctx, state) {
			t.Fatalf("the connection a call went on never read READY: %s", state)
		}
	}
	if cc.WaitForStateChange(ctx, connectivity.Ready) {
		t.Fatalf("the proxy dropped an idle connection its client pinged every 10 s: now %s", cc.GetState())
	}
}
