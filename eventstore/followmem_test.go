package eventstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
)

// A reader of the journal holds a bounded number of bytes ahead of its
// handler, whatever the entries' size. It held up to 512 entries ahead:
// behind a slow target, every collection's reader filled that much, and
// entries of a few megabytes (wide vectors in large batches) made it
// gigabytes. With entries of 8 MB it held all 312 MB it could read here.
func TestAJournalReaderHoldsBoundedBytesAhead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := estest.Start(t)
	nc := srv.Conn(t)
	j, err := srv.Store(t).OpenJournalOn(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	const subject, entries, size = "zdm.journal.m.d_db.c_c", 40, 8 << 20
	entry := make([]byte, size)
	for i := range entries {
		entry[0] = byte(i)
		if _, err := j.Append(ctx, subject, entry, ""); err != nil {
			t.Fatal(err)
		}
	}
	// What the reader's connection took off the wire, less what the
	// handler was given: what it holds ahead.
	before := nc.Stats().InBytes
	var held uint64
	errEnough := errors.New("enough")
	read := 0
	err = j.Follow(ctx, subject, 1, func(uint64, []byte, uint64) error {
		if read++; read == 1 {
			// A slow target: the reader takes what it may meanwhile.
			time.Sleep(3 * time.Second)
			held = nc.Stats().InBytes - before - size
		}
		if read == entries {
			return errEnough
		}
		return nil
	})
	if !errors.Is(err, errEnough) {
		t.Fatalf("read %d of %d entries: %v", read, entries, err)
	}
	t.Logf("held %d MB ahead of a busy handler, of %d MB journaled", held>>20, entries*size>>20)
	if want := uint64(eventstore.FollowAhead + 2*size); held > want {
		t.Fatalf("the reader held %d MB ahead of its handler (entries of 8 MB), want at most %d MB", held>>20, want>>20)
	}
}
