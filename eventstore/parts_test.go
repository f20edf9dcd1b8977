package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	zdm "github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/eventstore"
)

// smallJournal is a journal on a server whose messages hold 64 KiB, so
// that entries in parts stay small.
func smallJournal(t *testing.T) *eventstore.Journal {
	t.Helper()
	config := strings.Replace(zdm.NATSConfig, "max_payload: 32MB", "max_payload: 65536", 1)
	if config == zdm.NATSConfig {
		t.Fatal("nats.conf no longer ships max_payload: 32MB")
	}
	st, err := eventstore.Open(context.Background(), embeddedConn(t, config))
	if err != nil {
		t.Fatal(err)
	}
	j, err := st.OpenJournal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := eventstore.PartSize(j); got != 64<<10-1024 {
		t.Fatalf("a message holds %d bytes of an entry, want 63 KiB", got)
	}
	return j
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	return b
}

// Milvus takes a write of up to 64 MB, more than a JetStream message
// holds: its entry is stored in parts and read whole by Next and Follow,
// the readers' filters see the entry alone, and trimming or purging the
// journal removes the parts with their entries.
func TestAnEntryLargerThanAMessageIsStoredInPartsAndReadWhole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	j := smallJournal(t)
	const subject = "zdm.journal.m.d_db.c_c"
	big := randomBytes(int(eventstore.PartSize(j))*5/2, 1)
	a, err := j.Append(ctx, subject, []byte("a"), "")
	if err != nil {
		t.Fatal(err)
	}
	e, err := j.Append(ctx, subject, big, "m.boot#1")
	if err != nil {
		t.Fatalf("an entry of %d bytes: %v", len(big), err)
	}
	b, err := j.Append(ctx, subject, []byte("b"), "")
	if err != nil {
		t.Fatal(err)
	}
	if seq, data, ok, err := j.Next(ctx, subject, a+1); err != nil || !ok || seq != e || !bytes.Equal(data, big) {
		t.Fatalf("Next after %d: entry %d (want %d), %d bytes (want %d), equal %v, %v %v", a, seq, e, len(data), len(big), bytes.Equal(data, big), ok, err)
	}
	// Its head alone, for a reader that needs only the entry's header or
	// its sequence: the first bytes, without the parts.
	if seq, head, ok, err := j.NextHead(ctx, subject, a+1); err != nil || !ok || seq != e || len(head) != int(eventstore.PartSize(j)) || !bytes.Equal(head, big[:len(head)]) {
		t.Fatalf("NextHead after %d: entry %d (want %d), %d bytes (want the first %d), %v %v", a, seq, e, len(head), eventstore.PartSize(j), ok, err)
	}
	if seq, head, ok, err := j.NextHead(ctx, subject, e+1); err != nil || !ok || seq != b || string(head) != "b" {
		t.Fatalf("NextHead of an entry in one message: %d %q %v %v", seq, head, ok, err)
	}
	// Tried again after a lost answer, it is stored once.
	if again, err := j.Append(ctx, subject, big, "m.boot#1"); err != nil || again != e {
		t.Fatalf("the same entry again: %d (%v), want %d", again, err, e)
	}
	var read [][]byte
	errEnd := errors.New("end")
	err = j.Follow(ctx, subject, 1, func(seq uint64, data []byte, _ uint64) error {
		read = append(read, data)
		if seq >= b {
			return errEnd
		}
		return nil
	})
	if !errors.Is(err, errEnd) {
		t.Fatal(err)
	}
	if len(read) != 3 || string(read[0]) != "a" || !bytes.Equal(read[1], big) || string(read[2]) != "b" {
		t.Fatalf("Follow read %d entries of %v bytes, want a, the %d bytes and b", len(read), lens(read), len(big))
	}
	if subjects, err := j.Subjects(ctx, "zdm.journal.m.>"); err != nil || len(subjects) != 1 || subjects[subject] != 3 {
		t.Fatalf("the migration's subjects: %v (%v), want its 3 entries alone", subjects, err)
	}
	if last, err := j.LastSeq(ctx, "zdm.journal.m.>"); err != nil || last != b {
		t.Fatalf("the last entry %d (%v), want %d", last, err, b)
	}
	if parts, err := j.Subjects(ctx, "zdm.parts.>"); err != nil || parts["zdm.parts.m.d_db.c_c"] < 2 {
		t.Fatalf("parts %v (%v), want at least 2 of the entry", parts, err)
	}
	// Trimmed short of it, it is whole. The try again stored its parts
	// anew before its entry was found stored: they go with the next
	// entry trimmed.
	if err := j.Trim(ctx, subject, a); err != nil {
		t.Fatal(err)
	}
	if _, data, ok, err := j.Next(ctx, subject, e); err != nil || !ok || !bytes.Equal(data, big) {
		t.Fatalf("after a trim short of it: %d bytes, %v %v", len(data), ok, err)
	}
	c, err := j.Append(ctx, subject, []byte("c"), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Trim(ctx, subject, c); err != nil {
		t.Fatal(err)
	}
	if parts, err := j.Subjects(ctx, "zdm.parts.>"); err != nil || len(parts) != 0 {
		t.Fatalf("parts left after the trim past every entry: %v (%v)", parts, err)
	}
	// A migration purged loses its parts too.
	if _, err := j.Append(ctx, subject, big, ""); err != nil {
		t.Fatal(err)
	}
	if err := j.Purge(ctx, "zdm.journal.m.>"); err != nil {
		t.Fatal(err)
	}
	if parts, err := j.Subjects(ctx, "zdm.parts.>"); err != nil || len(parts) != 0 {
		t.Fatalf("parts left after the migration's purge: %v (%v)", parts, err)
	}
}

func lens(bs [][]byte) []int {
	out := make([]int, len(bs))
	for i, b := range bs {
		out[i] = len(b)
	}
	return out
}

// The writes of one collection are journaled side by side, large and
// small. The applier trims at each entry it applied; none of those trims
// may remove a part of an entry still to apply, so no entry may land
// between the parts of a large one and its own message.
func TestTrimmingAtEachEntryKeepsThePartsOfTheEntriesAfterIt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	j := smallJournal(t)
	const subject = "zdm.journal.m.d_db.c_c"
	var mu sync.Mutex
	var small []uint64
	larges := map[uint64][]byte{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Go(func() {
			for i := range 3 {
				data := randomBytes(int(eventstore.PartSize(j))*3/2+i, uint64(10*w+i))
				seq, err := j.Append(ctx, subject, data, fmt.Sprintf("large-%d-%d", w, i))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				larges[seq] = data
				mu.Unlock()
			}
		})
		wg.Go(func() {
			for i := range 40 {
				seq, err := j.Append(ctx, subject, []byte("s"), fmt.Sprintf("small-%d-%d", w, i))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				small = append(small, seq)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	bigSeqs := slices.Sorted(maps.Keys(larges))
	all := slices.Sorted(slices.Values(append(slices.Clone(small), bigSeqs...)))
	for _, at := range all {
		if err := j.Trim(ctx, subject, at); err != nil {
			t.Fatal(err)
		}
		i, _ := slices.BinarySearch(bigSeqs, at+1)
		if i == len(bigSeqs) {
			continue
		}
		next := bigSeqs[i]
		if _, data, ok, err := j.Next(ctx, subject, next); err != nil || !ok || !bytes.Equal(data, larges[next]) {
			t.Fatalf("after a trim up to entry %d, entry %d reads %d bytes of %d (%v %v)", at, next, len(data), len(larges[next]), ok, err)
		}
	}
}
