package domain_test

import (
	"slices"
	"testing"
	"time"

	"github.com/zdm-io/zdm/domain"
)

// Several zdmd share a copy, and a range whose copier died is copied
// again: a range is recorded once, and the collection is done with the
// last of its planned ranges, whoever recorded it.
func TestARangeIsRecordedOnceAndTheLastOneEndsItsCollection(t *testing.T) {
	m, progress := copying(t, domain.CollectionPlan{Database: "default", Collection: "c", Rows: 30, Ranges: []string{"r0", "r1", "r2"}})
	record := func(r string, rows int64) []domain.Event {
		return progress(domain.BulkCopyProgressed{Range: r, Rows: rows})
	}
	for _, step := range []struct {
		rng    string
		events int
		done   bool
	}{{"r1", 1, false}, {"r1", 0, false}, {"r0", 1, false}, {"r2", 1, true}, {"r2", 0, true}} {
		events := record(step.rng, 10)
		if len(events) != step.events {
			t.Fatalf("recording %s gave %d events, want %d", step.rng, len(events), step.events)
		}
		if c := m.Collections[0]; c.Done != step.done {
			t.Fatalf("after %s the collection's done = %v, want %v", step.rng, c.Done, step.done)
		}
	}
	if m.CopiedRows != 30 {
		t.Fatalf("copied rows = %d, want 30 (each range once)", m.CopiedRows)
	}
}

// A copy plans each collection when it reaches it: the first plan
// recorded stands (its ranges name the checkpoints), and the collection
// is done with the last of those ranges.
func TestACollectionPlannedByTheCopyIsPlannedOnce(t *testing.T) {
	// The preflight's estimate, no ranges yet.
	m, record := copying(t, domain.CollectionPlan{Database: "default", Collection: "c", Rows: 25})
	if c := m.Collections[0]; len(c.Planned) != 0 || c.Total != 25 {
		t.Fatalf("before its plan: %+v", c)
	}
	if n := len(record(domain.BulkCopyProgressed{Plan: &domain.CollectionPlan{Rows: 20, Ranges: []string{"r0", "r1"}, ReadTS: 7}})); n != 1 {
		t.Fatalf("the first plan gave %d events, want 1", n)
	}
	if n := len(record(domain.BulkCopyProgressed{Plan: &domain.CollectionPlan{Rows: 99, Ranges: []string{"x0"}, ReadTS: 8}})); n != 0 {
		t.Fatalf("a second plan gave %d events, want none", n)
	}
	if c := m.Collections[0]; c.Total != 20 || c.ReadTS != 7 || len(c.Planned) != 2 || c.Done || c.Copied != 0 {
		t.Fatalf("after the plans: %+v", c)
	}
	record(domain.BulkCopyProgressed{Range: "r1", Rows: 10})
	if m.Collections[0].Done {
		t.Fatal("done before its last planned range")
	}
	if ev := record(domain.BulkCopyProgressed{Range: "r0", Rows: 10}); len(ev) != 1 || !m.Collections[0].Done || m.CopiedRows != 20 {
		t.Fatalf("after the last range: %+v, copied %d", m.Collections[0], m.CopiedRows)
	}
}

// A segment listed for the copy and compacted away before it was staged:
// its partition is planned again while nothing of it is imported; the
// partition's staged segments are forgotten and staged again, the other
// partitions' checkpoints stay.
func TestAPartitionIsPlannedAgainUntilItIsImported(t *testing.T) {
	m, record := copying(t, domain.CollectionPlan{Database: "default", Collection: "c", Rows: 30})
	record(domain.BulkCopyProgressed{Plan: &domain.CollectionPlan{Rows: 30, Ranges: []string{
		"segment/1/10/100", "import/1/10/_default", "segment/1/20/200", "segment/1/20/201", "import/1/20/p1"}}})
	record(domain.BulkCopyProgressed{Range: "segment/1/10/100"})
	record(domain.BulkCopyProgressed{Range: "import/1/10/_default", Rows: 10})
	record(domain.BulkCopyProgressed{Range: "segment/1/20/200"})
	// Segment 201 is gone: partition 20 is listed again, with 200 and
	// 201 compacted into 202.
	again := []string{"segment/1/10/100", "import/1/10/_default", "segment/1/20/202", "import/1/20/p1"}
	if n := len(record(domain.BulkCopyProgressed{Plan: &domain.CollectionPlan{Rows: 30, Ranges: again}, Replanned: "1/20"})); n != 1 {
		t.Fatalf("the new plan of a partition not imported gave %d events, want 1", n)
	}
	c := m.Collections[0]
	if len(c.Planned) != 4 || c.Planned[2] != "segment/1/20/202" {
		t.Fatalf("planned after the new listing: %v", c.Planned)
	}
	if _, kept := c.DoneRanges["segment/1/20/200"]; kept {
		t.Fatal("the dropped partition's staged segment is still checkpointed: it would not be staged again")
	}
	if _, kept := c.DoneRanges["import/1/10/_default"]; !kept || c.Copied != 10 {
		t.Fatalf("the other partition's import was forgotten: %v, copied %d", c.DoneRanges, c.Copied)
	}
	// Partition 10 is imported: it is never planned again, nor is a
	// collection that is done.
	if n := len(record(domain.BulkCopyProgressed{Plan: &domain.CollectionPlan{Rows: 30, Ranges: again}, Replanned: "1/10"})); n != 0 {
		t.Fatalf("a new plan of an imported partition gave %d events, want none", n)
	}
	record(domain.BulkCopyProgressed{Range: "segment/1/20/202"})
	record(domain.BulkCopyProgressed{Range: "import/1/20/p1", Rows: 20})
	if !c.Done || m.CopiedRows != 30 {
		t.Fatalf("after the last import: done %v, copied %d", c.Done, m.CopiedRows)
	}
	if n := len(record(domain.BulkCopyProgressed{Plan: &domain.CollectionPlan{Rows: 30, Ranges: again}, Replanned: "1/20"})); n != 0 {
		t.Fatalf("a new plan of a done collection gave %d events, want none", n)
	}
}

// Two zdmd sharing a segment copy each replan a partition from the plan
// they read before the other's replan: each replan changes its own
// partition's steps only, whatever the rest of the plan it carries.
func TestReplansOfTwoPartitionsFromOneOldPlanBothStand(t *testing.T) {
	m, record := copying(t, domain.CollectionPlan{Database: "default", Collection: "c", Rows: 30})
	old := []string{"segment/1/10/100", "import/1/10/_default", "segment/1/20/200", "import/1/20/p1"}
	record(domain.BulkCopyProgressed{Plan: &domain.CollectionPlan{Rows: 30, Ranges: old}})
	record(domain.BulkCopyProgressed{Range: "segment/1/10/100"})
	record(domain.BulkCopyProgressed{Plan: &domain.CollectionPlan{Rows: 30, Ranges: []string{
		"segment/1/10/100", "import/1/10/_default", "segment/1/20/201", "segment/1/20/202", "import/1/20/p1"}}, Replanned: "1/20"})
	record(domain.BulkCopyProgressed{Range: "segment/1/20/201"})
	// The other zdmd read the plan before that replan.
	record(domain.BulkCopyProgressed{Plan: &domain.CollectionPlan{Rows: 30, Ranges: []string{
		"segment/1/10/101", "import/1/10/_default", "segment/1/20/200", "import/1/20/p1"}}, Replanned: "1/10"})
	want := []string{"segment/1/10/101", "import/1/10/_default", "segment/1/20/201", "segment/1/20/202", "import/1/20/p1"}
	c := m.Collections[0]
	if !slices.Equal(c.Planned, want) {
		t.Fatalf("planned after both replans: %v, want %v", c.Planned, want)
	}
	if _, kept := c.DoneRanges["segment/1/20/201"]; !kept {
		t.Fatal("the replan of partition 10 forgot a segment of partition 20 staged under its own replan")
	}
	if _, kept := c.DoneRanges["segment/1/10/100"]; kept {
		t.Fatal("partition 10's dropped segment is still checkpointed")
	}
}

// copying returns a migration whose copy started with plans, and what
// records a checkpoint of default/c on it as the saga does.
func copying(t *testing.T, plans ...domain.CollectionPlan) (*domain.Migration, func(domain.BulkCopyProgressed) []domain.Event) {
	t.Helper()
	m := domain.NewMigration()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	apply := func(events ...domain.Event) {
		t.Helper()
		for _, e := range events {
			at = at.Add(time.Second)
			if err := m.Apply(domain.Record{Seq: m.Seq() + 1, At: at, Event: e}); err != nil {
				t.Fatalf("%s: %v", e.EventType(), err)
			}
		}
	}
	source := domain.ClusterRef{ID: "cl-src", Name: "prod", Organization: "acme", Project: "search", Endpoint: "127.0.0.1:19530"}
	apply(domain.MigrationRequested{ID: "mig-1", Source: source, Target: domain.TargetSpec{Name: "prod-new", Project: "search", Provisioner: "local"},
		Options: domain.Options{}.WithDefaults(), RequestedBy: "olga", Organization: "acme"},
		domain.Locked{SourceClusterID: source.ID},
		domain.ProvisioningStarted{Provisioner: "local"},
		domain.TargetProvisioned{ClusterID: "cl-tgt", Endpoint: "127.0.0.1:19560"},
		domain.CopyStarted{Collections: plans})
	return m, func(p domain.BulkCopyProgressed) []domain.Event {
		t.Helper()
		p.Database, p.Collection = "default", "c"
		events, err := domain.Decide(m, domain.RecordCopyProgress{Progress: p})
		if err != nil {
			t.Fatal(err)
		}
		apply(events...)
		return events
	}
}
