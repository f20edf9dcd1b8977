// Package domaintest builds realistic migration histories for tests and
// benchmarks of what loads and pages them.
package domaintest

import (
	"fmt"
	"math"
	"time"

	"github.com/zdm-io/zdm/domain"
)

// SyncHistory returns the batches of a migration that copied `collections`
// collections of 10 ranges each and then synced for `sync`, its lag
// sampled once a second and recorded as the saga records it: every
// `interval` and at each crossing of the threshold. The lag swings across
// the threshold every six hours. Batches are in order; each is one
// stored message.
func SyncHistory(id string, start time.Time, collections int, sync, interval time.Duration) ([]domain.Batch, error) {
	m := domain.NewMigration()
	var out []domain.Batch
	now := start
	record := func(at time.Time, cmd domain.Command, events ...domain.Event) error {
		if cmd != nil {
			var err error
			if events, err = domain.Decide(m, cmd); err != nil {
				return fmt.Errorf("%T at %s: %w", cmd, at, err)
			}
		}
		for _, e := range events {
			if err := m.Apply(domain.Record{Seq: uint64(len(out) + 1), At: at, Actor: "zdm", Event: e}); err != nil {
				return fmt.Errorf("%s at %s: %w", e.EventType(), at, err)
			}
		}
		out = append(out, domain.Batch{Actor: "zdm", At: at, Events: events})
		return nil
	}
	source := domain.ClusterRef{ID: "cl-src", Name: "prod", Organization: "acme", Project: "search", Endpoint: "127.0.0.1:19530"}
	plan := domain.CopyStarted{}
	for c := range collections {
		p := domain.CollectionPlan{Database: "default", Collection: fmt.Sprintf("c%d", c), Rows: 10_000}
		for r := range 10 {
			p.Ranges = append(p.Ranges, fmt.Sprintf("r%d", r))
		}
		plan.Collections = append(plan.Collections, p)
	}
	steps := []domain.Event{
		domain.MigrationRequested{ID: id, Source: source, Target: domain.TargetSpec{Name: "prod-new", Project: "search", Provisioner: "local"},
			Options: domain.Options{}.WithDefaults(), RequestedBy: "olga", Organization: "acme"},
		domain.Locked{SourceClusterID: source.ID},
		domain.ProvisioningStarted{Provisioner: "local"},
		domain.TargetProvisioned{ClusterID: "cl-tgt", Endpoint: "127.0.0.1:19560"},
		plan,
	}
	for _, e := range steps {
		if err := record(now, nil, e); err != nil {
			return nil, err
		}
		now = now.Add(time.Second)
	}
	for _, p := range plan.Collections {
		for i, r := range p.Ranges {
			e := domain.BulkCopyProgressed{Database: p.Database, Collection: p.Collection, Range: r, Rows: 1000, Done: i == len(p.Ranges)-1}
			if err := record(now, nil, e); err != nil {
				return nil, err
			}
			now = now.Add(200 * time.Millisecond)
		}
	}
	if err := record(now, domain.CompleteCopy{}); err != nil {
		return nil, err
	}
	threshold := m.Options.LagThresholdSeconds
	for s := time.Duration(0); s < sync; s += time.Second {
		at := now.Add(s)
		lag := threshold * (1 + 0.5*math.Sin(2*math.Pi*s.Hours()/12))
		if !m.LagDue(lag, at, interval) {
			continue
		}
		if err := record(at, domain.SampleLag{LagSeconds: lag, Now: at}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Migration is a new migration of organization acme's source at
// sourceEndpoint, as a step receives it.
func Migration(id, sourceEndpoint string) *domain.Migration {
	m := domain.NewMigration()
	m.ID, m.Organization = id, "acme"
	m.Source = domain.ClusterRef{ID: "c-src", Endpoint: sourceEndpoint, Organization: "acme"}
	m.Target = domain.TargetSpec{Name: "new", Project: "p"}
	return m
}
