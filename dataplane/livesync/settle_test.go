package livesync

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/capture"
)

// emptyJournal is a journal with no entry.
type emptyJournal struct{ capture.JournalLog }

func (emptyJournal) Next(context.Context, string, uint64) (uint64, []byte, bool, error) {
	return 0, nil, false, nil
}

// A kept repair is settled once it is settleAfter old and every entry its
// collection's applier has still to apply was journaled after that, in
// zdmd's clock.
func TestAKeptRepairIsSettledOnceOlderThanWhatItsApplierHasStillToApply(t *testing.T) {
	ctx := context.Background()
	a := NewApplier("m-1", emptyJournal{}, nil, nil, nil, false, func(string, string) bool { return true }, nil, nil)
	subject := capture.CollectionSubject("m-1", "d", "c")
	w := &applyWorker{}
	a.workers[subject] = w
	now := time.Now()
	kept := []keptRepair{
		{seq: 1, entry: capture.Entry{At: now.Add(-10 * time.Second)}},
		{seq: 2, entry: capture.Entry{At: now.Add(-6 * time.Second)}},
		{seq: 3, entry: capture.Entry{At: now.Add(-time.Second)}},
	}
	seqs := func() []uint64 {
		t.Helper()
		due, err := a.settledNow(ctx, subject, kept)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, k := range due {
			out = append(out, k.seq)
		}
		return out
	}
	if got := seqs(); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("nothing to apply: settled %v, want [1 2] (3 is too young)", got)
	}
	// An entry to apply, committed between the allowances of 1 and 2.
	w.oldest = now.Add(-3 * time.Second)
	if got := seqs(); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("an entry of 3 s ago to apply: settled %v, want [1]", got)
	}
	// The source's clock 3 s ahead of zdmd's: that entry is older than
	// 1's allowance too.
	a.ahead.Store(int64(3 * time.Second))
	if got := seqs(); len(got) != 0 {
		t.Fatalf("with the source's clock ahead: settled %v, want none", got)
	}
}

// The collections of settled repairs are read by the check while writes
// are held, and those repairs are not read again for the hold's repair.
func TestSettledRepairsAreSkippedAndTheirCollectionsNamed(t *testing.T) {
	a := NewApplier("m-1", emptyJournal{}, nil, nil, nil, false, func(string, string) bool { return true }, nil, nil)
	a.settled[7] = [2]string{"d", "c"}
	if !a.isSettled(7) || a.isSettled(8) {
		t.Fatal("settled 7 alone expected")
	}
	colls := map[[2]string]bool{{"d", "other"}: true}
	a.settledColls(colls)
	if !colls[[2]string{"d", "c"}] || !colls[[2]string{"d", "other"}] || len(colls) != 2 {
		t.Fatalf("collections to read while held: %v", colls)
	}
}
