package domain

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Sentinel errors of the domain. Callers match them with errors.Is; the
// typed errors below wrap them and carry the details.
var (
	ErrInvalidTransition    = errors.New("invalid transition")
	ErrTerminal             = errors.New("migration has ended")
	ErrConfirmationRequired = errors.New("confirmation that writes to the source have stopped is required")
	ErrLagAboveThreshold    = errors.New("sync lag is above the threshold")
	ErrCrossOrganization    = errors.New("source and target belong to different organizations")
	ErrSourceBusy           = errors.New("source cluster already has an active migration")
	ErrSyncTimeLimit        = errors.New("sync time limit has passed")
	ErrClusterLocked        = errors.New("cluster is locked by a migration")
	ErrClusterDeleted       = errors.New("cluster was deleted")
	ErrClusterExists        = errors.New("cluster already exists")
	ErrNotFound             = errors.New("not found")
	ErrStoreUnavailable     = errors.New("the event store is unavailable")
	// ErrStoreFull is ErrStoreUnavailable for a store out of space: not a
	// matter of seconds, like an election.
	ErrStoreFull        = fmt.Errorf("%w (the NATS store is full)", ErrStoreUnavailable)
	ErrInvalid          = errors.New("invalid input")
	ErrUnknownEventType = errors.New("unknown event type")
	ErrFenced           = errors.New("another zdmd drives this migration now")
)

// TransitionError says which event the current state refused.
type TransitionError struct {
	State string
	Event string
}

func (e *TransitionError) Error() string {
	if when, ok := operatorCommand(e.Event); ok {
		return fmt.Sprintf("%s: the migration is %s; %s", ErrInvalidTransition, e.State, when)
	}
	return fmt.Sprintf("%s: %s is not allowed in state %s", ErrInvalidTransition, e.Event, e.State)
}

// operatorCommand says, for the events an operator's command asks for,
// when the command can be given: the operator meets the refusal, and the
// event's stored name means nothing to them.
func operatorCommand(event string) (string, bool) {
	switch event {
	case TypeMigrationRequested:
		return "it was requested already", true
	case TypeCopyRateLimitChanged:
		return "the copy's rate limit can be changed until the copy ends, not after", true
	case TypeSyncStopped:
		return "the sync can be stopped only while the migration is syncing", true
	case TypeCancelled:
		return "a migration can be cancelled only until it ends", true
	case TypeNoted:
		return "a migration that ended takes no more notes", true
	}
	return "", false
}

// Is lets callers match ErrInvalidTransition, and ErrTerminal when the state
// is terminal.
func (e *TransitionError) Is(target error) bool {
	return target == ErrInvalidTransition || (target == ErrTerminal && IsTerminal(State(e.State)))
}

// LagError carries the lag that made a stop-sync refusal.
type LagError struct {
	LagSeconds       float64
	ThresholdSeconds float64
	Sampled          bool
}

func (e *LagError) Error() string {
	if !e.Sampled {
		return fmt.Sprintf("%s: no lag has been sampled yet (threshold %.1fs); retry later or force", ErrLagAboveThreshold, e.ThresholdSeconds)
	}
	return fmt.Sprintf("%s: current lag is %.1fs, threshold %.1fs; wait for the lag to drop or force", ErrLagAboveThreshold, e.LagSeconds, e.ThresholdSeconds)
}

// Unwrap returns ErrLagAboveThreshold.
func (e *LagError) Unwrap() error { return ErrLagAboveThreshold }

// BusyError names the migration holding the source, or holding another
// registration of the same Milvus (SameEndpointAs). Recorded is the
// migration the refused request had been recorded as, when it lost the
// lock to another started at the same moment: it stays, failed.
type BusyError struct {
	ClusterID      string
	MigrationID    string
	SameEndpointAs string
	Recorded       string
}

func (e *BusyError) Error() string {
	msg := fmt.Sprintf("%s: cluster %s is locked by migration %s", ErrSourceBusy, e.ClusterID, e.MigrationID)
	if e.SameEndpointAs != "" {
		msg = fmt.Sprintf("%s: cluster %s has the endpoint of cluster %s, which migration %s holds: they are one Milvus",
			ErrSourceBusy, e.ClusterID, e.SameEndpointAs, e.MigrationID)
	}
	if e.Recorded != "" {
		msg += fmt.Sprintf(" (it took the lock as this request was recorded: it stays as migration %s, failed with source_busy)", e.Recorded)
	}
	return msg
}

// Unwrap returns ErrSourceBusy.
func (e *BusyError) Unwrap() error { return ErrSourceBusy }

// ValidationError names the input field that is wrong.
type ValidationError struct {
	Field   string
	Message string
	// Err is why, when the field is right but the state refuses it (nil:
	// ErrInvalid, the field itself is wrong).
	Err error
}

func (e *ValidationError) Error() string { return e.Field + " " + e.Message }

// Unwrap returns Err, or ErrInvalid.
func (e *ValidationError) Unwrap() error {
	if e.Err != nil {
		return e.Err
	}
	return ErrInvalid
}

// LockedFieldError names a field a running migration keeps as it is.
func LockedFieldError(field string) error {
	return &ValidationError{Field: field, Message: "cannot change while the cluster is in a running migration", Err: ErrClusterLocked}
}

// LockedProxyError refuses a change of the proxy address of a source a
// migration runs on: its applications write through that address.
func LockedProxyError(migrationID string) error {
	return &ValidationError{Field: "proxy_listen", Err: ErrClusterLocked,
		Message: fmt.Sprintf("cannot change while migration %s runs: the applications reach the source through this address, and moving it would cut them off; change it once the migration has ended", migrationID)}
}

// FieldError builds a ValidationError.
func FieldError(field, msg string) error { return &ValidationError{Field: field, Message: msg} }

// LongerThan reports whether v has more than n characters, as the API's
// document counts them (maxLength): a character of several bytes is one.
func LongerThan(v string, n int) bool { return utf8.RuneCountInString(v) > n }
