package domain_test

import (
	"testing"
	"time"

	"github.com/zdm-io/zdm/domain"
)

// Several zdmd share a copy, and a range whose copier died is copied
// again: a range is recorded once, and the collection is done with the
// last of its planned ranges, whoever recorded it.
func TestARangeIsRecordedOnceAndTheLastOneEndsItsCollection(t *testing.T) {
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
		domain.CopyStarted{Collections: []domain.CollectionPlan{{Database: "default", Collection: "c", Rows: 30, Ranges: []string{"r0", "r1", "r2"}}}})
	record := func(r string, rows int64) []domain.Event {
		t.Helper()
		events, err := domain.Decide(m, domain.RecordCopyProgress{Progress: domain.BulkCopyProgressed{Database: "default", Collection: "c", Range: r, Rows: rows}})
		if err != nil {
			t.Fatal(err)
		}
		apply(events...)
		return events
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
