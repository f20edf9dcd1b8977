package livesync

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/capture"
)

// The switch's drain looks at every collection written: one entry up to
// the fence that is not applied, in any of them, keeps it waiting; one
// after the fence does not.
func TestTheDrainWaitsForEveryCollectionUpToTheFence(t *testing.T) {
	ctx := context.Background()
	journal, positions := journalStore(t)
	a := NewApplier("m-1", journal, nil, nil, positions, false, func(string, string) bool { return true }, nil, nil)
	const collections = 300
	seqs := map[string]uint64{}
	for i := range collections {
		subj := capture.CollectionSubject("m-1", "d", fmt.Sprintf("c%d", i))
		e := capture.Entry{Op: capture.OpUpsert, Method: "Upsert", Database: "d", Collection: fmt.Sprintf("c%d", i), At: time.Now()}
		seq, err := journal.Append(ctx, subj, e.Marshal(), "")
		if err != nil {
			t.Fatal(err)
		}
		seqs[subj] = seq
	}
	fence, err := journal.LastSeq(ctx, capture.JournalPrefix("m-1")+">")
	if err != nil {
		t.Fatal(err)
	}
	drained := func() bool {
		t.Helper()
		ok, err := a.Drained(ctx, fence)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if drained() {
		t.Fatal("drained with nothing applied")
	}
	// Every collection applied but one, which the applier has not seen.
	last := capture.CollectionSubject("m-1", "d", fmt.Sprintf("c%d", collections/2))
	for subj, seq := range seqs {
		if subj != last {
			if err := positions.Put(ctx, a.positionKey(subj), []byte(strconv.FormatUint(seq, 10))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if drained() {
		t.Fatalf("drained with %s not applied", last)
	}
	if err := positions.Put(ctx, a.positionKey(last), []byte(strconv.FormatUint(seqs[last], 10))); err != nil {
		t.Fatal(err)
	}
	// An entry after the fence does not hold the drain.
	if _, err := journal.Append(ctx, last, (&capture.Entry{Op: capture.OpUpsert, At: time.Now()}).Marshal(), ""); err != nil {
		t.Fatal(err)
	}
	if !drained() {
		t.Fatal("not drained with every entry up to the fence applied")
	}
}

// The lag over many collections is that of the oldest write any of them
// lacks, wherever it is.
func TestTheLagIsTheOldestPendingWriteOfAnyCollection(t *testing.T) {
	ctx := context.Background()
	journal, positions := journalStore(t)
	a := NewApplier("m-1", journal, nil, nil, positions, false, func(string, string) bool { return true }, nil, nil)
	now := time.Now()
	const collections, oldest = 200, 137
	for i := range collections {
		at := now.Add(-time.Second)
		if i == oldest {
			at = now.Add(-7 * time.Second)
		}
		e := capture.Entry{Op: capture.OpUpsert, Method: "Upsert", Database: "d", Collection: fmt.Sprintf("c%d", i), At: at}
		if _, err := journal.Append(ctx, capture.CollectionSubject("m-1", "d", fmt.Sprintf("c%d", i)), e.Marshal(), ""); err != nil {
			t.Fatal(err)
		}
	}
	lag, err := a.Lag(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if lag < 6.9 || lag > 7.1 {
		t.Fatalf("lag %.2fs, want 7 s: the oldest pending write of %d collections", lag, collections)
	}
}
