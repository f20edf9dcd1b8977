// Package domain holds the migration and cluster aggregates of zdm: their
// events, the commands they accept, the transition table and the rules.
// It is pure: no I/O and no clock reads, so every decision is reproducible
// from the event history alone.
package domain

import (
	"encoding/json"
	"time"
)

// Event is something that happened to an aggregate. Type names are past
// tense and versioned so that the history can outlive the code that wrote it.
type Event interface {
	EventType() string
}

// Migration event type names.
const (
	TypeMigrationRequested   = "zdm.migration.requested.v1"
	TypeLocked               = "zdm.migration.locked.v1"
	TypeProvisioningStarted  = "zdm.migration.provisioning_started.v1"
	TypeTargetProvisioned    = "zdm.migration.target_provisioned.v1"
	TypeCopyStarted          = "zdm.migration.copy_started.v1"
	TypeBulkCopyProgressed   = "zdm.migration.bulk_copy_progressed.v1"
	TypeBulkCopied           = "zdm.migration.bulk_copied.v1"
	TypeCopyRateLimitChanged = "zdm.migration.copy_rate_limit_changed.v1"
	TypeLagSampled           = "zdm.migration.lag_sampled.v1"
	TypeLagThresholdReached  = "zdm.migration.lag_threshold_reached.v1"
	TypeVerified             = "zdm.migration.verified.v1"
	TypeSyncStopped          = "zdm.migration.sync_stopped.v1"
	TypeSwitchedOver         = "zdm.migration.switched_over.v1"
	TypeFailed               = "zdm.migration.failed.v1"
	TypeCancelled            = "zdm.migration.cancelled.v1"
	TypeNotificationSent     = "zdm.migration.notification_sent.v1"
	TypeDriverChanged        = "zdm.migration.driver_changed.v1"
	TypeNoted                = "zdm.migration.noted.v1"
)

// MigrationRequested opens a migration's history.
type MigrationRequested struct {
	ID           string     `json:"id"`
	Source       ClusterRef `json:"source"`
	Target       TargetSpec `json:"target"`
	Options      Options    `json:"options"`
	RequestedBy  string     `json:"requested_by"`
	Organization string     `json:"organization"`
}

// Locked records that the source cluster is locked for this migration (R5).
type Locked struct {
	SourceClusterID string `json:"source_cluster_id"`
}

// ProvisioningStarted records that a target was asked of the provisioner, so
// a restart knows a target may exist and must be reclaimed or released.
type ProvisioningStarted struct {
	Provisioner string `json:"provisioner"`
}

// TargetProvisioned records the new, empty target cluster (R4).
type TargetProvisioned struct {
	ClusterID string `json:"cluster_id"`
	Endpoint  string `json:"endpoint"`
	Version   string `json:"version,omitempty"`
}

// CollectionPlan is one collection the bulk copy will move. In the
// CopyStarted event, a plan without ranges is planned by the copy (see
// BulkCopyProgressed.Plan), and its rows are the server's estimate.
type CollectionPlan struct {
	Database   string `json:"database"`
	Collection string `json:"collection"`
	Rows       int64  `json:"rows"`
	// Ranges name the primary-key ranges the copy moves one at a time;
	// the copier alone reads them.
	Ranges []string `json:"ranges,omitempty"`
	// ReadTS is the source timestamp the plan read the collection at, and
	// the copy reads it at (0: strongly consistent reads).
	ReadTS uint64 `json:"read_ts,omitempty"`
}

// CopyStarted records the inventory the copy works from.
type CopyStarted struct {
	Collections []CollectionPlan `json:"collections"`
	Preflight   json.RawMessage  `json:"preflight,omitempty"`
}

// BulkCopyProgressed is a checkpoint: one primary-key range of a collection
// is on the target. Ranges are named by the copier; a finished range is
// never copied again after a restart.
type BulkCopyProgressed struct {
	Database   string `json:"database"`
	Collection string `json:"collection"`
	Range      string `json:"range"`
	Rows       int64  `json:"rows"`
	// Bytes are the binlog bytes a segment copy's step staged on the
	// target.
	Bytes int64 `json:"bytes,omitempty"`
	// Done marks the collection's last range.
	Done bool `json:"done,omitempty"`
	// Skipped says why a collection was not copied (for example, dropped
	// on the source during the copy).
	Skipped string `json:"skipped,omitempty"`
	// Plan, on a checkpoint of no range, records the collection's ranges
	// as the copy cut them, before it copies any: a copy plans each
	// collection when it reaches it, so the first rows move while the
	// others are planned. A collection is planned once; its ranges keep
	// their names across restarts.
	Plan *CollectionPlan `json:"plan,omitempty"`
	// Replanned, with Plan, replaces the plan of a collection copied by
	// segments whose partition "COLLECTION/PARTITION" (by their IDs) lost
	// a listed segment to compaction before it was staged: the partition
	// was listed again, its staged segments dropped, and Plan holds its
	// new steps in place of the old ones.
	Replanned string `json:"replanned,omitempty"`
}

// CopyRateLimitChanged records an operator's new limit on the rows per
// second the row copy reads (0: none).
type CopyRateLimitChanged struct {
	RowsPerSecond int64  `json:"rows_per_second"`
	By            string `json:"by"`
}

// A segment copy names its checkpoints by step: a segment's binlogs
// staged on the target ("segment/COLLECTION/PARTITION/SEGMENT", by the
// source's IDs) and a partition imported there
// ("import/COLLECTION/PARTITION/NAME").
const (
	SegmentStep = "segment"
	ImportStep  = "import"
)

// BulkCopied ends the copy; the migration is syncing from here.
type BulkCopied struct {
	Rows int64 `json:"rows"`
}

// DriverChanged records that a zdmd took over driving the migration: the
// instance and its lease's term. From then on only that term's saga may
// record the migration's steps, so a stale driver that wakes up is fenced
// off by the log itself.
type DriverChanged struct {
	Instance string `json:"instance"`
	Term     uint64 `json:"term"`
}

// LagSampled is one sample of the sync lag (R7), recorded at a coarse
// interval and whenever the lag crosses the threshold; the per-second
// series lives outside the event log.
type LagSampled struct {
	LagSeconds float64 `json:"lag_seconds"`
	// Crossed is "under" or "over" when this sample is the first on its
	// side of the threshold.
	Crossed string `json:"crossed,omitempty"`
}

// LagThresholdReached records the first time the lag went under the
// threshold (R8); it is recorded once per migration.
type LagThresholdReached struct {
	LagSeconds float64 `json:"lag_seconds"`
}

// Verified carries a verification report.
type Verified struct {
	Phase  string          `json:"phase"`
	Equal  bool            `json:"equal"`
	Report json.RawMessage `json:"report,omitempty"`
}

// SyncStopped records the operator's confirmed stop (R9).
type SyncStopped struct {
	ConfirmedBy string  `json:"confirmed_by"`
	Forced      bool    `json:"forced,omitempty"`
	LagSeconds  float64 `json:"lag_seconds"`
}

// SwitchedOver records that traffic goes to the target (R11). It is
// recorded while the writes are still held, and they go on to the target
// only once it is: WritePauseMS is the pause up to that point (DrainMS of
// it applying what was journaled before the hold, RepairMS repairing
// again the writes whose outcome was unknown, CheckMS comparing the
// clusters; with RepairInCheck the repairs ran during the check, which
// then counts from the drain's end); recording this event and releasing
// the writes add a few milliseconds, which the client's own gap shows.
type SwitchedOver struct {
	TargetEndpoint string  `json:"target_endpoint"`
	WritePauseMS   float64 `json:"write_pause_ms,omitempty"`
	DrainMS        float64 `json:"drain_ms,omitempty"`
	RepairMS       float64 `json:"repair_ms,omitempty"`
	CheckMS        float64 `json:"check_ms,omitempty"`
	RepairInCheck  bool    `json:"repair_in_check,omitempty"`
}

// Failed ends a migration with a reason an operator can act on.
type Failed struct {
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// Cancelled ends a migration at the request of an operator.
type Cancelled struct {
	By string `json:"by"`
}

// Noted records what the operator should know of a migration that did
// not stop it: the target could not do as the source did (a collection
// loaded with fewer replicas, a role left out for a user it lacks), and
// what to do about it.
type Noted struct {
	Note string `json:"note"`
}

// NotificationSent records an email so that it is never sent twice:
// whom it reached, and whom the mail server refused for good, with its
// reply (an email refused to everyone is recorded too, and not tried
// again).
type NotificationSent struct {
	Kind       string            `json:"kind"`
	Recipients []string          `json:"recipients"`
	Refused    map[string]string `json:"refused,omitempty"`
}

// EventType implementations.
func (MigrationRequested) EventType() string   { return TypeMigrationRequested }
func (Locked) EventType() string               { return TypeLocked }
func (ProvisioningStarted) EventType() string  { return TypeProvisioningStarted }
func (TargetProvisioned) EventType() string    { return TypeTargetProvisioned }
func (CopyStarted) EventType() string          { return TypeCopyStarted }
func (BulkCopyProgressed) EventType() string   { return TypeBulkCopyProgressed }
func (BulkCopied) EventType() string           { return TypeBulkCopied }
func (CopyRateLimitChanged) EventType() string { return TypeCopyRateLimitChanged }
func (LagSampled) EventType() string           { return TypeLagSampled }
func (LagThresholdReached) EventType() string  { return TypeLagThresholdReached }
func (Verified) EventType() string             { return TypeVerified }
func (SyncStopped) EventType() string          { return TypeSyncStopped }
func (SwitchedOver) EventType() string         { return TypeSwitchedOver }
func (Failed) EventType() string               { return TypeFailed }
func (Cancelled) EventType() string            { return TypeCancelled }
func (NotificationSent) EventType() string     { return TypeNotificationSent }
func (DriverChanged) EventType() string        { return TypeDriverChanged }
func (Noted) EventType() string                { return TypeNoted }

// Record is an event as stored: its position in the stream, when it was
// recorded and on whose behalf.
type Record struct {
	Seq   uint64
	At    time.Time
	Actor string
	Event Event
}
