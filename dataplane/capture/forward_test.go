package capture

import (
	"context"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
)

// journaledCapture is a capture armed for migration m-1 of cluster src,
// and its journal.
func journaledCapture(t *testing.T) (*Capture, *eventstore.Journal) {
	journal, intents := intentStore(t)
	c := NewCapture(journal, nil, nil)
	c.KeepGivenKeys(intents)
	c.Arm("src", "m-1", domain.Options{})
	return c, journal
}

// forwardAsync forwards an upsert of key through c with send, and returns
// its outcome on the channel.
func forwardAsync(t *testing.T, c *Capture, ctx context.Context, key int64, cut context.Context, send Send) <-chan error {
	done := make(chan error, 1)
	req := upsertOf(t, key)
	go func() {
		_, err := c.Forward(ctx, Call{ClusterID: "src", Method: upsertMethod, Request: req, Lookup: keyField, Cut: cut}, send)
		done <- err
	}()
	return done
}

// A client that hangs up while its write is on its way does not take the
// write back: the source may still apply it. The write goes on; its
// answer is journaled as a write, not repaired from the source while it
// may not have landed yet; and the next write of its keys waits for it,
// so the journal keeps the source's order.
func TestAWriteWhoseClientHangsUpGoesOnAndIsJournaled(t *testing.T) {
	c, journal := journaledCapture(t)
	client, hangUp := context.WithCancel(context.Background())
	onItsWay, land := make(chan context.Context, 1), make(chan struct{})
	first := forwardAsync(t, c, client, 7, nil, func(ctx context.Context, req []byte) (Sent, error) {
		onItsWay <- ctx
		<-land
		return Sent{Request: req, Response: answered()}, ctx.Err()
	})
	sendCtx := <-onItsWay
	hangUp()
	sentNext := make(chan struct{})
	next := forwardAsync(t, c, context.Background(), 7, nil, func(_ context.Context, req []byte) (Sent, error) {
		close(sentNext)
		return Sent{Request: req, Response: answered()}, nil
	})
	select {
	case <-sentNext:
		t.Fatal("the next write of key 7 was sent while the one before was still on its way")
	case <-time.After(300 * time.Millisecond):
	}
	if err := sendCtx.Err(); err != nil {
		t.Fatalf("the write was cut off when its client hung up: %v", err)
	}
	close(land)
	for _, done := range []<-chan error{first, next} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	entries := journaled(t, journal)
	if len(entries) != 2 || entries[0].Op != OpUpsert || entries[1].Op != OpUpsert {
		t.Fatalf("journaled %+v, want both upserts, in turn", entries)
	}
}

// A write still on its way when its instance stops driving is cut off
// there (the next term repairs it), whether or not its client is there.
func TestAWriteOnItsWayIsCutWithItsTerm(t *testing.T) {
	c, journal := journaledCapture(t)
	term, cut := context.WithCancel(context.Background())
	onItsWay := make(chan struct{})
	done := forwardAsync(t, c, context.Background(), 7, term, func(ctx context.Context, _ []byte) (Sent, error) {
		close(onItsWay)
		<-ctx.Done()
		return Sent{}, ctx.Err()
	})
	<-onItsWay
	cut()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a write cut off was answered as done")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write on its way was not cut off with its term")
	}
	if entries := journaled(t, journal); len(entries) != 1 || entries[0].Op != OpUncertain {
		t.Fatalf("journaled %+v, want the write as uncertain", entries)
	}
}

// A Milvus proxy that stops waiting for a write (its context ended)
// answers with an error while the write it queued still runs: the write
// is repaired from the source, not forgotten as refused.
func TestAWriteTheSourceStoppedWaitingForIsUncertain(t *testing.T) {
	c, journal := journaledCapture(t)
	gaveUp, _ := proto.Marshal(&milvuspb.MutationResult{Status: &commonpb.Status{ErrorCode: commonpb.ErrorCode_UnexpectedError,
		Code: 65535, Reason: "proxy TaskCondition context Done"}})
	refused, _ := proto.Marshal(&milvuspb.MutationResult{Status: &commonpb.Status{ErrorCode: commonpb.ErrorCode_UnexpectedError,
		Code: 1100, Reason: "invalid parameter"}})
	for _, answer := range [][]byte{gaveUp, refused} {
		done := forwardAsync(t, c, context.Background(), 7, nil, func(_ context.Context, req []byte) (Sent, error) {
			return Sent{Request: req, Response: answer}, nil
		})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if entries := journaled(t, journal); len(entries) != 1 || entries[0].Op != OpUncertain {
		t.Fatalf("journaled %+v, want the write not waited for as uncertain, and the refused one not at all", entries)
	}
}
