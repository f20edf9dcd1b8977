// Package simulated is a data plane without Milvus: it provisions, copies
// and syncs nothing real, at a pace one can watch. It exercises the control
// plane (saga, restarts, API) in tests and lets an operator try the flow
// with `--dataplane simulated`. Every side effect is appended to a step log,
// so a test can prove that no completed step ran twice.
package simulated

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/zdm-io/zdm/domain"
)

// Config shapes the simulated migration.
type Config struct {
	// StepLog, when set, receives one line per side effect.
	StepLog string
	// Collections and RangesPerCollection shape the copy; RowsPerRange
	// rows per range.
	Collections, RangesPerCollection int
	RowsPerRange                     int64
	// RangeDelay is how long one range takes to copy.
	RangeDelay time.Duration
	// LagStart is the first lag reported; it halves every LagStep.
	LagStart float64
	LagStep  time.Duration
	// SwitchDelay is how long the switch takes.
	SwitchDelay time.Duration
}

// DataPlane implements every data-plane step.
type DataPlane struct {
	cfg Config
	mu  sync.Mutex
}

// New returns a simulated data plane.
func New(cfg Config) *DataPlane {
	if cfg.Collections == 0 {
		cfg.Collections = 2
	}
	if cfg.RangesPerCollection == 0 {
		cfg.RangesPerCollection = 4
	}
	if cfg.RowsPerRange == 0 {
		cfg.RowsPerRange = 1000
	}
	if cfg.LagStep == 0 {
		cfg.LagStep = 200 * time.Millisecond
	}
	return &DataPlane{cfg: cfg}
}

func (d *DataPlane) note(format string, args ...any) error {
	if d.cfg.StepLog == "" {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := os.OpenFile(d.cfg.StepLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, format+"\n", args...)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Provision returns the same simulated target for a migration every time.
func (d *DataPlane) Provision(_ context.Context, m *domain.Migration) (domain.Target, error) {
	if err := d.note("%s provision", m.ID); err != nil {
		return domain.Target{}, err
	}
	return domain.Target{ClusterID: "t-" + m.ID, Endpoint: "simulated://" + m.ID, Version: "simulated"}, nil
}

// Release forgets the simulated target.
func (d *DataPlane) Release(_ context.Context, m *domain.Migration) error {
	return d.note("%s release", m.ID)
}

// Plan returns the configured shape.
func (d *DataPlane) Plan(_ context.Context, m *domain.Migration) (domain.CopyStarted, error) {
	plan := domain.CopyStarted{}
	for i := range d.cfg.Collections {
		plan.Collections = append(plan.Collections, domain.CollectionPlan{
			Database: "default", Collection: fmt.Sprintf("c%d", i), Rows: int64(d.cfg.RangesPerCollection) * d.cfg.RowsPerRange,
		})
	}
	// The preflight says how the copy goes, as the real one does.
	mode := domain.CopyModeRows
	if m.Options.CopyMode == domain.CopyModeSegments {
		mode = domain.CopyModeSegments
	}
	plan.Preflight, _ = json.Marshal(map[string]string{"copy_mode": mode, "copy_mode_reason": "the simulated data plane moves no data"})
	return plan, d.note("%s plan", m.ID)
}

// Copy "copies" each range not yet checkpointed.
func (d *DataPlane) Copy(ctx context.Context, m *domain.Migration, checkpoint func(context.Context, domain.BulkCopyProgressed) error) error {
	for ci, c := range m.Collections {
		for r := range d.cfg.RangesPerCollection {
			name := fmt.Sprintf("r%03d", r)
			var bytes int64
			if m.Options.CopyMode == domain.CopyModeSegments {
				// A segment copy's steps, as the real one names them, with
				// the bytes a segment of these rows would hold.
				name, bytes = fmt.Sprintf("%s/%d/1/%d", domain.SegmentStep, ci+1, r), d.cfg.RowsPerRange*600
			}
			if _, done := c.DoneRanges[name]; done {
				continue
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d.cfg.RangeDelay):
			}
			if err := d.note("%s copy %s/%s/%s", m.ID, c.Database, c.Collection, name); err != nil {
				return err
			}
			p := domain.BulkCopyProgressed{Database: c.Database, Collection: c.Collection, Range: name,
				Rows: d.cfg.RowsPerRange, Bytes: bytes, Done: r == d.cfg.RangesPerCollection-1}
			if err := checkpoint(ctx, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// Sync reports a lag that halves every LagStep, until ctx ends.
func (d *DataPlane) Sync(ctx context.Context, m *domain.Migration, lag func(context.Context, float64) error) error {
	current := d.cfg.LagStart
	t := time.NewTicker(d.cfg.LagStep)
	defer t.Stop()
	for {
		if err := lag(ctx, current); err != nil && ctx.Err() == nil {
			return err
		}
		current /= 2
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Switch "routes" traffic to the simulated target.
func (d *DataPlane) Switch(ctx context.Context, m *domain.Migration) (domain.SwitchedOver, domain.Verified, func(bool), error) {
	select {
	case <-ctx.Done():
		return domain.SwitchedOver{}, domain.Verified{}, nil, ctx.Err()
	case <-time.After(d.cfg.SwitchDelay):
	}
	if err := d.note("%s switch", m.ID); err != nil {
		return domain.SwitchedOver{}, domain.Verified{}, nil, err
	}
	route := func(toTarget bool) {
		if toTarget {
			_ = d.note("%s route to the target", m.ID)
		} else {
			_ = d.note("%s resume on the source", m.ID)
		}
	}
	return domain.SwitchedOver{TargetEndpoint: m.TargetCluster.Endpoint}, domain.Verified{Phase: "switch", Equal: true}, route, nil
}

// Arm has nothing to capture.
func (d *DataPlane) Arm(context.Context, *domain.Migration) error { return nil }

// Disarm has nothing to stop.
func (d *DataPlane) Disarm(context.Context, *domain.Migration) error { return nil }

// Verify reports equality.
func (d *DataPlane) Verify(_ context.Context, m *domain.Migration, phase string) (domain.Verified, error) {
	if phase == "copy" && d.cfg.LagStart > 1 {
		// The simulated source is written during the copy (its lag says
		// so): right after the copy the target lacks those writes, until
		// the sync replays them.
		report := `{"equal":false,"summary":"rows written to the source during the copy are not on the target yet"}`
		return domain.Verified{Phase: phase, Equal: false, Report: []byte(report)}, d.note("%s verify %s", m.ID, phase)
	}
	return domain.Verified{Phase: phase, Equal: true}, d.note("%s verify %s", m.ID, phase)
}
