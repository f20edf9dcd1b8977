package eventstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
)

// The applier follows each collection's journal subject with a reader of
// its own, so an application writing to more collections than a stream
// holds consumers by default (1,000) would leave the rest unapplied, and
// the migration could never switch. A journal an earlier zdmd made has
// its limit raised when zdmd opens it.
func TestTheJournalIsFollowedInMoreCollectionsThanAStreamsDefaultConsumers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := estest.Start(t)
	// As an earlier zdmd made it, with the server's default limit: it is
	// raised when zdmd opens it.
	js, err := jetstream.New(srv.Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: eventstore.JournalStream, Subjects: []string{"zdm.journal.>"}}); err != nil {
		t.Fatal(err)
	}
	j := estest.Journal(t, srv.Store(t))
	const collections = 1100
	subject := func(i int) string { return fmt.Sprintf("zdm.journal.m.d_db.c_c%d", i) }
	for i := range collections {
		if _, err := j.Append(ctx, subject(i), []byte("x"), ""); err != nil {
			t.Fatal(err)
		}
	}
	// The switch's fence, taken while writes are held: the newest entry
	// of them all.
	last, err := j.Append(ctx, subject(collections/2), []byte("y"), "")
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	fence, err := j.LastSeq(ctx, "zdm.journal.m.>")
	if err != nil || fence != last {
		t.Fatalf("fence %d (%v), want %d", fence, err, last)
	}
	t.Logf("the fence over %d subjects read in %s", collections, time.Since(began))
	if none, err := j.LastSeq(ctx, "zdm.journal.other.>"); err != nil || none != 0 {
		t.Fatalf("fence of a migration without entries %d (%v), want 0", none, err)
	}
	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	seen := make(chan int, collections)
	failed := make(chan error, collections)
	for i := range collections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := j.Follow(fctx, subject(i), 1, func(uint64, []byte, uint64) error {
				seen <- i
				return nil
			})
			if err != nil && fctx.Err() == nil {
				failed <- fmt.Errorf("%s: %w", subject(i), err)
			}
		}()
	}
	for range collections {
		select {
		case <-seen:
		case err := <-failed:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("not every subject's entry was read")
		}
	}
}
