package capture

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
)

// The outcome of a write rides with the next write's entry on its
// subject; the last one, with no write after it, goes in an entry of its
// own. Each outcome is in the journal once.
func TestAnOutcomeRidesWithTheNextWritesEntry(t *testing.T) {
	ctx := context.Background()
	c, _ := armedCapture(t)
	// The second write must come while the first outcome lingers: 10 ms
	// was not always enough between two calls of a test under CI's load.
	c.linger = time.Second
	journal := c.journal.(*eventstore.Journal)
	one := begin(t, c, 1)
	if err := c.after(ctx, one, upsertOf(t, 1), answered()); err != nil {
		t.Fatal(err)
	}
	two := begin(t, c, 2)
	if err := c.after(ctx, two, upsertOf(t, 2), answered()); err != nil {
		t.Fatal(err)
	}
	settled(t, c)
	raw := journaledRaw(t, journal)
	if len(raw) != 3 {
		t.Fatalf("journaled %d entries, want 3 (two writes, one outcome entry): %+v", len(raw), raw)
	}
	if got := raw[1].Resolutions(); !raw[1].Pending || len(got) != 1 || got[0].Intent != one.token || got[0].Outcome != OutcomeApplied {
		t.Fatalf("the second write's entry carries %+v, want the first write's outcome", got)
	}
	if got := raw[2].Resolutions(); raw[2].Op != OpOutcome || len(got) != 1 || got[0].Intent != two.token {
		t.Fatalf("the last entry is %s carrying %+v, want the second write's outcome on its own", raw[2].Op, got)
	}
}

// A write whose entry the journal refuses (a full store) leaves the
// outcomes it was to carry to go on their own: none is lost.
func TestOutcomesAWriteCouldNotCarryGoOnTheirOwn(t *testing.T) {
	ctx := context.Background()
	journal, intents := intentStore(t)
	flaky := &refuseSecondWrite{Journal: journal}
	c := NewCapture(flaky, nil, nil)
	c.KeepGivenKeys(intents)
	c.Arm("src", "m-1", domain.Options{})
	one := begin(t, c, 1)
	if err := c.after(ctx, one, upsertOf(t, 1), answered()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.before(ctx, "src", upsertMethod, upsertOf(t, 2), "", keyField); err == nil {
		t.Fatal("a write whose entry the journal refused was let through")
	}
	settled(t, c)
	got := map[string]int{}
	for _, e := range journaledRaw(t, journal) {
		for _, r := range e.Resolutions() {
			got[r.Intent+" "+r.Outcome]++
		}
	}
	if len(got) != 1 || got[one.token+" "+OutcomeApplied] != 1 {
		t.Fatalf("outcomes journaled %v; want the first write's, applied, once", got)
	}
}

// refuseSecondWrite is a journal that refuses, for good, the second
// write's entry.
type refuseSecondWrite struct {
	*eventstore.Journal
	writes atomic.Int32
}

func (r *refuseSecondWrite) Append(ctx context.Context, subject string, data []byte, id string) (uint64, error) {
	if e, err := UnmarshalEntry(data); err == nil && e.Pending && r.writes.Add(1) == 2 {
		return 0, domain.ErrStoreFull
	}
	return r.Journal.Append(ctx, subject, data, id)
}
