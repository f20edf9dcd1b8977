package projections

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/zdm-io/zdm/domain"
)

// LagHistoryLength bounds the lag history kept in a migration's status.
const LagHistoryLength = 360

// WritePause tells where the write pause at the switch went: applying
// the journal up to the fence, repairing again the writes whose outcome
// was unknown (before it was recorded apart, in DrainMS), and comparing
// the two clusters. With RepairInCheck the repairs ran during the check.
type WritePause struct {
	DrainMS       float64 `json:"drain_ms"`
	RepairMS      float64 `json:"repair_ms"`
	CheckMS       float64 `json:"check_ms"`
	RepairInCheck bool    `json:"repair_in_check,omitempty"`
}

// String is the pause's parts as an operator reads them.
func (p WritePause) String() string {
	switch {
	case p.RepairMS > 0 && p.RepairInCheck:
		return fmt.Sprintf("drain %.0f ms, check %.0f ms (repairs %.0f ms of it)", p.DrainMS, p.CheckMS, p.RepairMS)
	case p.RepairMS > 0:
		return fmt.Sprintf("drain %.0f ms, repairs %.0f ms, check %.0f ms", p.DrainMS, p.RepairMS, p.CheckMS)
	}
	return fmt.Sprintf("drain %.0f ms, check %.0f ms", p.DrainMS, p.CheckMS)
}

// MigrationView is the status of one migration as the API shows it.
type MigrationView struct {
	ID               string                    `json:"id"`
	State            domain.State              `json:"state"`
	Stage            string                    `json:"stage"`
	Organization     string                    `json:"organization"`
	SourceClusterID  string                    `json:"source_cluster_id"`
	Source           domain.ClusterRef         `json:"source"`
	Target           TargetView                `json:"target"`
	Options          domain.Options            `json:"options"`
	RequestedBy      string                    `json:"requested_by"`
	Progress         Progress                  `json:"progress"`
	LagSeconds       *float64                  `json:"lag_seconds"`
	LagSampledAt     *time.Time                `json:"lag_sampled_at,omitempty"`
	LagHistory       []LagPoint                `json:"lag_history"`
	MaxLagSeconds    float64                   `json:"max_lag_seconds"`
	ThresholdReached *time.Time                `json:"lag_threshold_reached_at,omitempty"`
	Stages           []StageView               `json:"stages"`
	SyncStartedAt    *time.Time                `json:"sync_started_at,omitempty"`
	SyncDeadline     *time.Time                `json:"sync_deadline,omitempty"`
	SyncStop         *domain.SyncStopped       `json:"sync_stop,omitempty"`
	StoppedAt        *time.Time                `json:"stopped_at,omitempty"`
	Verification     []domain.Verified         `json:"verification,omitempty"`
	Preflight        json.RawMessage           `json:"preflight,omitempty"`
	Notifications    []domain.NotificationSent `json:"notifications,omitempty"`
	Notes            []NoteView                `json:"notes,omitempty"`
	WritePauseMS     *float64                  `json:"write_pause_ms,omitempty"`
	WritePause       *WritePause               `json:"write_pause,omitempty"`
	FailureReason    string                    `json:"failure_reason"`
	FailureDetail    string                    `json:"failure_detail,omitempty"`
	CancelledBy      string                    `json:"cancelled_by,omitempty"`
	CreatedAt        time.Time                 `json:"created_at"`
	UpdatedAt        time.Time                 `json:"updated_at"`
	EndedAt          *time.Time                `json:"ended_at,omitempty"`
	Events           int                       `json:"events"`
	Seq              uint64                    `json:"seq"`
}

// NoteView is a note on the migration and when it was recorded (see
// domain.Noted).
type NoteView struct {
	At   time.Time `json:"at"`
	Note string    `json:"note"`
}

// TargetView is the requested target and, once provisioned, where it is.
type TargetView struct {
	Name        string `json:"name"`
	Project     string `json:"project"`
	Provisioner string `json:"provisioner"`
	ClusterID   string `json:"cluster_id,omitempty"`
	Endpoint    string `json:"endpoint,omitempty"`
	// Connection is filled after the switch: where applications connect now.
	Connection *Connection `json:"connection,omitempty"`
}

// Connection tells clients where the migrated data lives.
type Connection struct {
	Endpoint  string `json:"endpoint"`
	ClusterID string `json:"cluster_id"`
}

// Progress is the copy progress, in total and per collection.
type Progress struct {
	RowsCopied    int64      `json:"rows_copied"`
	RowsTotal     int64      `json:"rows_total"`
	RowsPerSecond float64    `json:"rows_per_second"`
	ETASeconds    *float64   `json:"eta_seconds"`
	StartedAt     *time.Time `json:"started_at,omitempty"`
	UpdatedAt     *time.Time `json:"updated_at,omitempty"`
	// Segments and bytes a segment copy staged on the target.
	SegmentsCopied int              `json:"segments_copied,omitempty"`
	BytesCopied    int64            `json:"bytes_copied,omitempty"`
	Collections    []CollectionView `json:"collections"`
}

// CollectionView is the copy progress of one collection.
type CollectionView struct {
	Database      string     `json:"database"`
	Collection    string     `json:"collection"`
	RowsCopied    int64      `json:"rows_copied"`
	RowsTotal     int64      `json:"rows_total"`
	Ranges        int        `json:"ranges_done"`
	Segments      int        `json:"segments_copied,omitempty"`
	Bytes         int64      `json:"bytes_copied,omitempty"`
	Done          bool       `json:"done"`
	Skipped       string     `json:"skipped,omitempty"`
	RowsPerSecond float64    `json:"rows_per_second"`
	ETASeconds    *float64   `json:"eta_seconds"`
	StartedAt     *time.Time `json:"started_at,omitempty"`
	UpdatedAt     *time.Time `json:"updated_at,omitempty"`
}

// LagPoint is one lag sample.
type LagPoint struct {
	At         time.Time `json:"at"`
	LagSeconds float64   `json:"lag_seconds"`
}

// StageView is one of the product's three phases.
type StageView struct {
	Name      string     `json:"name"`
	Status    string     `json:"status"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
}

// NewMigrationView returns an empty view for id.
func NewMigrationView(id string) *MigrationView {
	return &MigrationView{ID: id, LagHistory: []LagPoint{}, Progress: Progress{Collections: []CollectionView{}}}
}

func (v *MigrationView) lastSeq() uint64 { return v.Seq }

func ptr[T any](x T) *T { return &x }

func (v *MigrationView) apply(r domain.Record) {
	at := r.At
	switch e := r.Event.(type) {
	case domain.MigrationRequested:
		v.ID, v.Organization, v.Source, v.SourceClusterID = e.ID, e.Organization, e.Source, e.Source.ID
		v.Target = TargetView{Name: e.Target.Name, Project: e.Target.Project, Provisioner: e.Target.Provisioner}
		v.Options, v.RequestedBy, v.CreatedAt = e.Options, e.RequestedBy, at
		v.State = domain.StateRequested
	case domain.Locked:
		v.State = domain.StateLocked
	case domain.ProvisioningStarted:
		v.State = domain.StateProvisioning
	case domain.TargetProvisioned:
		v.State = domain.StateTargetProvisioned
		v.Target.ClusterID, v.Target.Endpoint = e.ClusterID, e.Endpoint
	case domain.CopyStarted:
		v.State, v.Preflight = domain.StateCopying, e.Preflight
		v.Progress = Progress{StartedAt: ptr(at), Collections: []CollectionView{}}
		for _, c := range e.Collections {
			v.Progress.Collections = append(v.Progress.Collections, CollectionView{Database: c.Database, Collection: c.Collection, RowsTotal: c.Rows})
			v.Progress.RowsTotal += c.Rows
		}
	case domain.BulkCopyProgressed:
		v.applyProgress(e, at)
	case domain.CopyRateLimitChanged:
		v.Options.CopyRateLimit = e.RowsPerSecond
	case domain.BulkCopied:
		v.State = domain.StateSyncing
		v.SyncStartedAt = ptr(at)
		v.SyncDeadline = ptr(at.Add(time.Duration(v.Options.SyncTimeLimit)))
		v.Progress.ETASeconds = ptr(0.0)
	case domain.LagSampled:
		v.LagSeconds, v.LagSampledAt = ptr(e.LagSeconds), ptr(at)
		v.MaxLagSeconds = max(v.MaxLagSeconds, e.LagSeconds)
		v.LagHistory = append(v.LagHistory, LagPoint{At: at, LagSeconds: e.LagSeconds})
		if n := len(v.LagHistory); n > LagHistoryLength {
			v.LagHistory = append(v.LagHistory[:0], v.LagHistory[n-LagHistoryLength:]...)
		}
	case domain.LagThresholdReached:
		v.ThresholdReached = ptr(at)
	case domain.Verified:
		v.Verification = append(v.Verification, e)
	case domain.SyncStopped:
		v.State, v.SyncStop, v.StoppedAt = domain.StateSyncStopped, &e, ptr(at)
	case domain.SwitchedOver:
		v.State, v.EndedAt = domain.StateSwitchedOver, ptr(at)
		v.Target.Connection = &Connection{Endpoint: e.TargetEndpoint, ClusterID: v.Target.ClusterID}
		if e.WritePauseMS > 0 {
			v.WritePauseMS = ptr(e.WritePauseMS)
		}
		if e.DrainMS > 0 || e.CheckMS > 0 { // not in switches recorded before the split
			v.WritePause = &WritePause{DrainMS: e.DrainMS, RepairMS: e.RepairMS, CheckMS: e.CheckMS, RepairInCheck: e.RepairInCheck}
		}
	case domain.Failed:
		v.State, v.FailureReason, v.FailureDetail, v.EndedAt = domain.StateFailed, e.Reason, e.Detail, ptr(at)
	case domain.Cancelled:
		v.State, v.CancelledBy, v.EndedAt = domain.StateCancelled, e.By, ptr(at)
	case domain.NotificationSent:
		v.Notifications = append(v.Notifications, e)
	case domain.Noted:
		v.Notes = append(v.Notes, NoteView{At: at, Note: e.Note})
	}
	if !domain.IsTerminal(v.State) {
		v.Stage = v.State.Stage()
	}
	v.Stages = v.stages()
	v.UpdatedAt, v.Seq = at, r.Seq
	v.Events++
}

func (v *MigrationView) applyProgress(e domain.BulkCopyProgressed, at time.Time) {
	i := -1
	for j, c := range v.Progress.Collections {
		if c.Database == e.Database && c.Collection == e.Collection {
			i = j
		}
	}
	if i < 0 {
		v.Progress.Collections = append(v.Progress.Collections, CollectionView{Database: e.Database, Collection: e.Collection})
		i = len(v.Progress.Collections) - 1
	}
	c := &v.Progress.Collections[i]
	if c.StartedAt == nil {
		c.StartedAt = v.Progress.StartedAt
	}
	if e.Plan != nil {
		// The plan's count replaces the server's estimate.
		v.Progress.RowsTotal += e.Plan.Rows - c.RowsTotal
		c.RowsTotal = e.Plan.Rows
		c.UpdatedAt = ptr(at)
		return
	}
	c.RowsCopied += e.Rows
	c.Ranges++
	if strings.HasPrefix(e.Range, domain.SegmentStep+"/") {
		c.Segments++
		c.Bytes += e.Bytes
		v.Progress.SegmentsCopied++
		v.Progress.BytesCopied += e.Bytes
	}
	c.Done = c.Done || e.Done || e.Skipped != ""
	if e.Skipped != "" {
		c.Skipped = e.Skipped
	}
	c.UpdatedAt = ptr(at)
	if c.Done && c.RowsCopied != c.RowsTotal {
		// The plan counted the rows before the copy: rows written during
		// it are copied too (its last range is open), rows deleted are
		// not, and a key the source holds twice is counted twice but read
		// once. A finished collection's total is what it moved; the
		// journal's replay carries the rest.
		v.Progress.RowsTotal += c.RowsCopied - c.RowsTotal
		c.RowsTotal = c.RowsCopied
	}
	c.RowsPerSecond, c.ETASeconds = rate(c.RowsCopied, c.RowsTotal, c.StartedAt, at, c.Done)
	v.Progress.RowsCopied += e.Rows
	v.Progress.UpdatedAt = ptr(at)
	v.Progress.RowsPerSecond, v.Progress.ETASeconds = rate(v.Progress.RowsCopied, v.Progress.RowsTotal, v.Progress.StartedAt, at, false)
}

// RatesAt gives the copy's rates and times left as of now while it runs.
// The view folds them at each checkpoint; between two, and above all when
// the copy stalls (a target down, a source that does not answer), the last
// checkpoint's figures would stand as if the copy went on at that pace.
func (v *MigrationView) RatesAt(now time.Time) {
	if v.State != domain.StateCopying {
		return
	}
	for i := range v.Progress.Collections {
		c := &v.Progress.Collections[i]
		if !c.Done && c.StartedAt != nil {
			c.RowsPerSecond, c.ETASeconds = rate(c.RowsCopied, c.RowsTotal, c.StartedAt, now, false)
		}
	}
	v.Progress.RowsPerSecond, v.Progress.ETASeconds = rate(v.Progress.RowsCopied, v.Progress.RowsTotal, v.Progress.StartedAt, now, false)
}

// rate is rows per second since start and the time left at that rate;
// once done, the average rate of the whole copy, and no time left.
func rate(copied, total int64, start *time.Time, now time.Time, done bool) (float64, *float64) {
	if start == nil || !now.After(*start) || copied == 0 {
		if done {
			return 0, ptr(0.0)
		}
		return 0, nil
	}
	rps := float64(copied) / now.Sub(*start).Seconds()
	if done {
		return rps, ptr(0.0)
	}
	eta := float64(max(total-copied, 0)) / rps
	return rps, &eta
}

func (v *MigrationView) stages() []StageView {
	copyAt, stopAt := v.Progress.StartedAt, v.StoppedAt
	names := []string{"initialization", "migration", "finalization"}
	starts := []*time.Time{ptr(v.CreatedAt), copyAt, stopAt}
	ends := []*time.Time{copyAt, stopAt, nil}
	if v.State == domain.StateSwitchedOver {
		ends[2] = v.EndedAt
	}
	out := make([]StageView, 3)
	for i, n := range names {
		s := StageView{Name: n, StartedAt: starts[i], EndedAt: ends[i], Status: "pending"}
		switch {
		case s.EndedAt != nil:
			s.Status = "done"
		case s.StartedAt != nil && domain.IsTerminal(v.State):
			s.Status, s.EndedAt = string(v.State), v.EndedAt
		case s.StartedAt != nil:
			s.Status = "running"
		}
		out[i] = s
	}
	return out
}
