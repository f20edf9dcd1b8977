package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	zdm "github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
)

// The applier batches entries while more wait. Entries appended one by one
// while the reader is busy reach it one by one, each the newest when the
// server sent it: the reader must still learn that they wait.
func TestFollowCountsEntriesReceivedButNotYetRead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j := estest.Journal(t, estest.NewStore(t))
	const subject, more = "zdm.journal.m.d_db.c_c", 5
	if _, err := j.Append(ctx, subject, []byte("0"), ""); err != nil {
		t.Fatal(err)
	}
	first := make(chan struct{})
	appended := make(chan error, 1)
	go func() {
		<-first
		for i := 1; i <= more; i++ {
			if _, err := j.Append(ctx, subject, []byte(fmt.Sprint(i)), ""); err != nil {
				appended <- err
				return
			}
			// Each entry is sent to the reader before the next exists.
			time.Sleep(50 * time.Millisecond)
		}
		appended <- nil
	}()
	var pending []uint64
	errEnough := errors.New("enough")
	err := j.Follow(ctx, subject, 1, func(seq uint64, data []byte, p uint64) error {
		pending = append(pending, p)
		if seq == 1 {
			close(first)
			if err := <-appended; err != nil {
				return err
			}
			// Give the last entry time to arrive here.
			time.Sleep(200 * time.Millisecond)
		}
		if len(pending) == more+1 {
			return errEnough
		}
		return nil
	})
	if !errors.Is(err, errEnough) {
		t.Fatal(err)
	}
	want := []uint64{0, 4, 3, 2, 1, 0}
	if fmt.Sprint(pending) != fmt.Sprint(want) {
		t.Fatalf("pending after each entry %v, want %v", pending, want)
	}
}

// Tests run NATS as zdm ships it: a journal message may be as large as
// the shipped max_payload allows, not NATS's 1 MB default.
func TestTestsRunWithTheShippedNATSConfiguration(t *testing.T) {
	j := estest.Journal(t, estest.NewStore(t))
	if got := eventstore.PartSize(j); got != 32<<20-1024 {
		t.Fatalf("a journal message may hold %d bytes of an entry; nats.conf allows 32 MB", got)
	}
}

// An entry tried again after its answer was lost is stored once: the
// same id within the duplicate window gives the first entry's sequence.
func TestAnEntryAppendedTwiceWithItsIDIsStoredOnce(t *testing.T) {
	ctx := context.Background()
	j := estest.Journal(t, estest.NewStore(t))
	const subject = "zdm.journal.m.d_db.c_c"
	first, err := j.Append(ctx, subject, []byte("w1"), "m.boot.0#1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := j.Append(ctx, subject, []byte("w1"), "m.boot.0#1")
	if err != nil || again != first {
		t.Fatalf("the same entry again: sequence %d (%v), want %d", again, err, first)
	}
	other, err := j.Append(ctx, subject, []byte("w2"), "m.boot.0#2")
	if err != nil || other == first {
		t.Fatalf("another entry: sequence %d (%v)", other, err)
	}
	if n, err := j.Subjects(ctx, subject); err != nil || n[subject] != 2 {
		t.Fatalf("%v entries stored (%v), want 2", n, err)
	}
}

// An entry as large as a message holds is stored in one, under a long
// subject and an id; a server that allows larger payloads does not raise
// a message past what JetStream stores in one.
func TestAnEntryAsLargeAsAMessageHoldsIsStoredInOne(t *testing.T) {
	ctx := context.Background()
	config := strings.Replace(zdm.NATSConfig, "max_payload: 32MB", "max_payload: 64MB", 1)
	if config == zdm.NATSConfig {
		t.Fatal("nats.conf no longer ships max_payload: 32MB")
	}
	st, err := eventstore.Open(ctx, embeddedConn(t, config))
	if err != nil {
		t.Fatal(err)
	}
	j, err := st.OpenJournal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := eventstore.PartSize(j); got != 32<<20-1024 {
		t.Fatalf("on a server allowing 64 MB a journal message may hold %d bytes, more than JetStream stores", got)
	}
	subject := "zdm.journal.m-0123456789abcdef.dx" + strings.Repeat("6e", 100) + ".cx" + strings.Repeat("6e", 100)
	data := bytes.Repeat([]byte("v"), int(eventstore.PartSize(j)))
	seq, err := j.Append(ctx, subject, data, "m-0123456789abcdef.intent.0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatalf("an entry of %d bytes: %v", len(data), err)
	}
	got, read, ok, err := j.Next(ctx, subject, seq)
	if err != nil || !ok || got != seq || !bytes.Equal(read, data) {
		t.Fatalf("read back: seq %d (want %d), %d bytes, %v %v", got, seq, len(read), ok, err)
	}
	if parts, err := j.Subjects(ctx, "zdm.parts.>"); err != nil || len(parts) != 0 {
		t.Fatalf("an entry that fits a message left parts: %v (%v)", parts, err)
	}
}
