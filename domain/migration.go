package domain

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/looplab/fsm"
)

// Migration is the aggregate of one migration, folded from its events.
type Migration struct {
	ID            string
	Source        ClusterRef
	Target        TargetSpec
	TargetCluster TargetProvisioned
	// TargetRequested is set once a provisioner was asked for a target, so
	// an ending migration knows there may be one to release.
	TargetRequested bool
	Organization    string
	Options         Options
	RequestedBy     string

	State         State
	FailedStage   string
	FailureReason string
	FailureDetail string
	CancelledBy   string

	CreatedAt     time.Time
	UpdatedAt     time.Time
	CopyStartedAt time.Time
	SyncStartedAt time.Time
	StoppedAt     time.Time
	EndedAt       time.Time

	// Preflight is the copier's report, as recorded when the copy started.
	Preflight        json.RawMessage
	Lag              LagInfo
	ThresholdReached bool
	Collections      []*CollectionProgress
	CopiedRows       int64
	Notifications    map[string]bool
	Verifications    []Verified
	// Notes are what the operator should know, each once, oldest first
	// (see Noted).
	Notes    []string
	SyncStop SyncStopped
	Switch   SwitchedOver
	// Driver is the zdmd whose saga may record the migration's steps.
	Driver DriverChanged

	// Version is the stream sequence of the last event applied; appends
	// expect it so that concurrent writers cannot both win.
	Version uint64

	machine *fsm.FSM
	dst     map[[2]string]string
}

// LagInfo is the latest lag sample.
type LagInfo struct {
	Seconds float64
	At      time.Time
	Sampled bool
}

// CollectionProgress is the copy state of one collection.
type CollectionProgress struct {
	Database   string
	Collection string
	Total      int64
	Copied     int64
	Done       bool
	Skipped    string
	// Planned are the ranges of the copy plan; DoneRanges the checkpointed
	// ones with their row counts.
	Planned    []string
	DoneRanges map[string]int64
	// ReadTS is the source timestamp the copy reads at (0: strongly).
	ReadTS    uint64
	UpdatedAt time.Time
}

// NewMigration returns an empty aggregate, ready for its first event.
func NewMigration() *Migration {
	m := &Migration{machine: newMachine(StateNew), dst: map[[2]string]string{}, Notifications: map[string]bool{}}
	for _, t := range transitions() {
		for _, s := range t.Src {
			m.dst[[2]string{t.Name, s}] = t.Dst
		}
	}
	return m
}

// Seq is the stream sequence of the last event applied.
func (m *Migration) Seq() uint64 { return m.Version }

// Clone returns a deep copy that shares nothing mutable with m.
func (m *Migration) Clone() *Migration {
	c := *m
	c.machine = newMachine(m.State)
	c.Collections = make([]*CollectionProgress, len(m.Collections))
	for i, p := range m.Collections {
		cp := *p
		cp.DoneRanges = make(map[string]int64, len(p.DoneRanges))
		for k, v := range p.DoneRanges {
			cp.DoneRanges[k] = v
		}
		c.Collections[i] = &cp
	}
	c.Notifications = make(map[string]bool, len(m.Notifications))
	for k, v := range m.Notifications {
		c.Notifications[k] = v
	}
	c.Verifications = append([]Verified(nil), m.Verifications...)
	return &c
}

// Can reports whether an event of type typ may be applied now.
func (m *Migration) Can(typ string) bool { return m.machine.Can(typ) }

// Apply folds one recorded event into the aggregate. It refuses an event the
// transition table does not allow, so replaying a history re-validates it.
func (m *Migration) Apply(r Record) error {
	typ := r.Event.EventType()
	if !m.machine.Can(typ) {
		return &TransitionError{State: string(m.State), Event: typ}
	}
	m.apply(r)
	m.State = State(m.dst[[2]string{typ, string(m.State)}])
	m.machine.SetState(string(m.State))
	if r.Seq > m.Version {
		m.Version = r.Seq
	}
	m.UpdatedAt = r.At
	return nil
}

func (m *Migration) apply(r Record) {
	switch e := r.Event.(type) {
	case MigrationRequested:
		m.ID, m.Source, m.Target, m.Options = e.ID, e.Source, e.Target, e.Options
		m.Organization, m.RequestedBy, m.CreatedAt = e.Organization, e.RequestedBy, r.At
	case ProvisioningStarted:
		m.TargetRequested = true
	case TargetProvisioned:
		m.TargetCluster = e
	case CopyStarted:
		m.CopyStartedAt, m.Preflight = r.At, e.Preflight
		m.Collections = m.Collections[:0]
		for _, c := range e.Collections {
			m.Collections = append(m.Collections, &CollectionProgress{
				Database: c.Database, Collection: c.Collection, Total: c.Rows, Planned: c.Ranges, DoneRanges: map[string]int64{}, ReadTS: c.ReadTS,
			})
		}
	case BulkCopyProgressed:
		c := m.collection(e.Database, e.Collection)
		if e.Plan != nil {
			switch {
			case len(c.Planned) == 0:
				c.Total, c.Planned, c.ReadTS = e.Plan.Rows, e.Plan.Ranges, e.Plan.ReadTS
			case e.Replanned != "":
				c.Total = e.Plan.Rows
				c.replanPartition(e.Replanned, e.Plan.Ranges)
				c.dropSteps(SegmentStep + "/" + e.Replanned + "/")
			}
			c.UpdatedAt = r.At
			break
		}
		if _, seen := c.DoneRanges[e.Range]; !seen && e.Range != "" {
			c.DoneRanges[e.Range] = e.Rows
			c.Copied += e.Rows
			m.CopiedRows += e.Rows
		}
		c.Done = c.Done || e.Done || e.Skipped != ""
		if e.Skipped != "" {
			c.Skipped = e.Skipped
		}
		c.UpdatedAt = r.At
	case CopyRateLimitChanged:
		m.Options.CopyRateLimit = e.RowsPerSecond
	case BulkCopied:
		m.SyncStartedAt = r.At
	case LagSampled:
		m.Lag = LagInfo{Seconds: e.LagSeconds, At: r.At, Sampled: true}
	case LagThresholdReached:
		m.ThresholdReached = true
	case Verified:
		m.Verifications = append(m.Verifications, e)
	case SyncStopped:
		m.StoppedAt, m.SyncStop = r.At, e
	case DriverChanged:
		m.Driver = e
	case SwitchedOver:
		m.Switch, m.EndedAt = e, r.At
	case Failed:
		m.FailedStage, m.FailureReason, m.FailureDetail, m.EndedAt = m.State.Stage(), e.Reason, e.Detail, r.At
	case Cancelled:
		m.FailedStage, m.CancelledBy, m.EndedAt = m.State.Stage(), e.By, r.At
	case NotificationSent:
		m.Notifications[e.Kind] = true
	case Noted:
		m.Notes = append(m.Notes, e.Note)
	}
}

// dropSteps forgets the checkpoints whose step starts with prefix: their
// staged files were dropped, and are staged again under the new plan.
func (c *CollectionProgress) dropSteps(prefix string) {
	for r := range c.DoneRanges {
		if strings.HasPrefix(r, prefix) {
			delete(c.DoneRanges, r)
		}
	}
}

// replanPartition puts the steps of partition "COLLECTION/PARTITION" in
// ranges in place of its old ones, and keeps every other partition's
// steps as they are: zdmd that share a copy may each replan a partition
// from a plan that lacks the others' latest replans.
func (c *CollectionProgress) replanPartition(partition string, ranges []string) {
	of := func(name string) bool {
		return strings.HasPrefix(name, SegmentStep+"/"+partition+"/") || strings.HasPrefix(name, ImportStep+"/"+partition+"/")
	}
	fresh := slices.DeleteFunc(slices.Clone(ranges), func(name string) bool { return !of(name) })
	planned := make([]string, 0, len(c.Planned)+len(fresh))
	placed := false
	for _, name := range c.Planned {
		if !of(name) {
			planned = append(planned, name)
			continue
		}
		if !placed {
			planned = append(planned, fresh...)
			placed = true
		}
	}
	if !placed {
		planned = append(planned, fresh...)
	}
	c.Planned = planned
}

// hasStep reports whether a checkpoint's step starts with prefix.
func (c *CollectionProgress) hasStep(prefix string) bool {
	for r := range c.DoneRanges {
		if strings.HasPrefix(r, prefix) {
			return true
		}
	}
	return false
}

// collection returns the progress of a collection, adding it when the copy
// found it after the plan was made (created during the copy).
func (m *Migration) collection(db, name string) *CollectionProgress {
	for _, c := range m.Collections {
		if c.Database == db && c.Collection == name {
			return c
		}
	}
	c := &CollectionProgress{Database: db, Collection: name, DoneRanges: map[string]int64{}}
	m.Collections = append(m.Collections, c)
	return c
}

// SyncDeadline is when the sync time limit (R10) passes; zero before the sync.
func (m *Migration) SyncDeadline() time.Time {
	if m.SyncStartedAt.IsZero() {
		return time.Time{}
	}
	return m.SyncStartedAt.Add(time.Duration(m.Options.SyncTimeLimit))
}

// crossed says whether a lag sample crosses the threshold from the last
// one recorded: "under" or "over" when it does, "" when it stays on the
// same side. A first sample crosses only when it is under.
func (m *Migration) crossed(seconds float64) string {
	side := func(s float64) string {
		if s < m.Options.LagThresholdSeconds {
			return "under"
		}
		return "over"
	}
	switch now := side(seconds); {
	case !m.Lag.Sampled && now == "under", m.Lag.Sampled && now != side(m.Lag.Seconds):
		return now
	}
	return ""
}

// LagDue reports whether a lag sample taken at now belongs in the history:
// the first one, one on the other side of the threshold than the last
// recorded, and otherwise one per interval. The per-second series lives
// outside the history, so that a week of sync stays a short history.
func (m *Migration) LagDue(seconds float64, now time.Time, interval time.Duration) bool {
	if !m.Lag.Sampled || m.crossed(seconds) != "" {
		return true
	}
	return now.Sub(m.Lag.At) >= interval
}

// TotalRows is the number of rows the copy plans to move.
func (m *Migration) TotalRows() int64 {
	var n int64
	for _, c := range m.Collections {
		n += c.Total
	}
	return n
}

// Fold replays a history into a new aggregate, validating every transition.
func Fold(records []Record) (*Migration, error) {
	m := NewMigration()
	for i, r := range records {
		if err := m.Apply(r); err != nil {
			return m, fmt.Errorf("event %d (seq %d): %w", i, r.Seq, err)
		}
	}
	return m, nil
}
