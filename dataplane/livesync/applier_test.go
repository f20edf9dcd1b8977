package livesync

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/capture"

	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
)

// A source whose clock runs ahead of zdmd's stamps its commits later than
// zdmd journals them; the lag must not read low, or 0, for it.
func TestTheLagOfASourceWhoseClockRunsAheadIsNotLow(t *testing.T) {
	journal, positions := journalStore(t)
	a := NewApplier("m-1", journal, nil, nil, positions, false, func(string, string) bool { return true }, nil, nil)
	now := time.Now()
	ahead := 30 * time.Second
	// Committed on the source 2 s ago by zdmd's clock: its clock says 28 s
	// from now.
	e := capture.Entry{Op: capture.OpUpsert, Method: "Upsert", Database: "d", Collection: "c", At: now.Add(-2 * time.Second),
		Timestamp: uint64(now.Add(-2*time.Second+ahead).UnixMilli()) << 18}
	if _, err := journal.Append(context.Background(), capture.CollectionSubject("m-1", "d", "c"), e.Marshal(), ""); err != nil {
		t.Fatal(err)
	}
	lag, err := a.Lag(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	if lag < 1.9 || lag > 2.1 {
		t.Fatalf("lag %.2fs for a write pending 2 s on a source 30 s ahead", lag)
	}
	t.Logf("a write pending 2 s on a source 30 s ahead: lag %.2fs", lag)
}

// The journal's size follows the lag, not the sync's age: applied entries
// leave it, a round behind the applier.
func TestTheJournalKeepsOnlyWhatIsNotYetApplied(t *testing.T) {
	journal, positions := journalStore(t)
	a := NewApplier("m-1", journal, nil, nil, positions, false, func(string, string) bool { return true }, nil, nil).TrimEvery(50 * time.Millisecond)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	defer func() { stop(); <-done }()
	// 20 MB over a long sync, in ten batches of 2 MB: heartbeats padded to
	// 4 KiB, which the applier applies without a target. Once a batch is
	// applied, the journal holds about a batch, however many came before.
	pad := strings.Repeat("x", 4096)
	var peak uint64 // the most the journal held once a batch was applied
	held := func() uint64 {
		size, err := journal.Bytes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return size
	}
	for batch := range 10 {
		for range 500 {
			e := capture.Entry{Op: capture.OpHeartbeat, At: time.Now(), Intent: pad}
			if _, err := journal.Append(ctx, capture.HeartbeatSubject("m-1"), e.Marshal(), ""); err != nil {
				t.Fatal(err)
			}
		}
		last, err := journal.LastSeq(ctx, capture.HeartbeatSubject("m-1"))
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			drained, err := a.Drained(ctx, last)
			if err != nil {
				t.Fatal(err)
			}
			if size := held(); drained && size <= 3<<20 {
				peak = max(peak, size)
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("after batch %d (%d MB journaled), the journal holds %d KiB (applied: %v)", batch, 2*(batch+1), size>>10, drained)
			}
		}
	}
	for deadline := time.Now().Add(30 * time.Second); held() > 64<<10; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the journal holds %d bytes once everything is applied", held())
		}
	}
	t.Logf("20 MB journaled in 10 batches: at most %d KiB held after a batch was applied, %d KiB at the end", peak>>10, held()>>10)
}

// journalStore opens a journal and a bucket of apply positions, each on a
// connection of its own, as zdmd does.
func journalStore(t testing.TB) (*eventstore.Journal, *eventstore.KV) {
	srv := estest.Start(t)
	journal, err := srv.Store(t).OpenJournalOn(context.Background(), srv.Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	return journal, estest.KV(t, srv.Store(t), "TEST_APPLY")
}
