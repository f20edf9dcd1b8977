package milvus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// A caller that stops waiting for an import call does not cancel it, and
// the connection closes only once the call answered.
func TestAnImportCallIsNeverCancelledAndCloseWaitsForIt(t *testing.T) {
	cc, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	c := &Conn{cc: cc}
	release, sawCancel := make(chan struct{}), make(chan bool, 1)
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan error, 1)
	go func() {
		_, err := uncancelled(ctx, c, func(ctx context.Context, _ milvuspb.MilvusServiceClient) (int, error) {
			<-release
			sawCancel <- ctx.Err() != nil
			return 1, nil
		})
		returned <- err
	}()
	cancel()
	if err := <-returned; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller got %v, want context.Canceled at once", err)
	}
	closed := make(chan struct{})
	go func() {
		_ = c.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close did not wait for the import call")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if <-sawCancel {
		t.Fatal("the import call saw its context cancelled")
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return once the call answered")
	}
}
