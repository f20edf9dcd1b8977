package domain

import (
	"fmt"
	"slices"
	"time"
)

// Command is a request to change a migration.
type Command interface{ commandName() string }

// RequestMigration opens a migration. The caller resolves the source cluster
// and the organization of the target project.
type RequestMigration struct {
	ID      string
	Source  ClusterRef
	Target  TargetSpec
	Options Options
	Actor   string
}

// Lock records that the source was locked.
type Lock struct{}

// StartProvisioning records that a target is being provisioned.
type StartProvisioning struct{}

// RecordTarget records the provisioned target.
type RecordTarget struct{ Target TargetProvisioned }

// StartCopy records the copy plan.
type StartCopy struct{ Plan CopyStarted }

// RecordCopyProgress checkpoints one copied range.
type RecordCopyProgress struct{ Progress BulkCopyProgressed }

// SetCopyRateLimit changes the row copy's rate limit (0: none) until the
// copy ends.
type SetCopyRateLimit struct {
	RowsPerSecond int64
	Actor         string
}

// CompleteCopy ends the copy and starts the sync.
type CompleteCopy struct{}

// SampleLag records a lag sample taken at Now.
type SampleLag struct {
	LagSeconds float64
	Now        time.Time
}

// RecordVerification stores a verification report.
type RecordVerification struct{ Report Verified }

// StopSync is the operator's stop (R9).
type StopSync struct {
	ConfirmWritesStopped bool
	Force                bool
	Actor                string
	Now                  time.Time
}

// CompleteSwitch records that traffic goes to the target.
type CompleteSwitch struct{ Switch SwitchedOver }

// Fail ends a migration with a reason.
type Fail struct{ Reason, Detail string }

// Cancel ends a migration at an operator's request; cancelling a cancelled
// migration changes nothing.
type Cancel struct{ Actor string }

// EnforceTimeLimit fails a sync that outlived its limit (R10).
type EnforceTimeLimit struct{ Now time.Time }

// RecordNotification records a sent email; recording one twice changes nothing.
type RecordNotification struct {
	Kind       string
	Recipients []string
	// Refused: the recipients the mail server refused for good, with its
	// reply.
	Refused map[string]string
}

func (RequestMigration) commandName() string   { return "request_migration" }
func (Lock) commandName() string               { return "lock" }
func (StartProvisioning) commandName() string  { return "start_provisioning" }
func (RecordTarget) commandName() string       { return "record_target" }
func (StartCopy) commandName() string          { return "start_copy" }
func (RecordCopyProgress) commandName() string { return "record_copy_progress" }
func (CompleteCopy) commandName() string       { return "complete_copy" }
func (SetCopyRateLimit) commandName() string   { return "set_copy_rate_limit" }
func (SampleLag) commandName() string          { return "sample_lag" }
func (RecordVerification) commandName() string { return "record_verification" }
func (StopSync) commandName() string           { return "stop_sync" }
func (CompleteSwitch) commandName() string     { return "complete_switch" }
func (Fail) commandName() string               { return "fail" }
func (Cancel) commandName() string             { return "cancel" }
func (EnforceTimeLimit) commandName() string   { return "enforce_time_limit" }
func (RecordNotification) commandName() string { return "record_notification" }

// TakeDriving makes a zdmd's lease term the migration's driver; a term
// older than the driver's is ErrFenced.
type TakeDriving struct {
	Instance string
	Term     uint64
}

func (TakeDriving) commandName() string { return "take_driving" }

// Note records what the operator should know; a note already recorded,
// or one past MaxNotes, changes nothing.
type Note struct{ Text string }

func (Note) commandName() string { return "note" }

// MaxNotes bounds a migration's notes: a fault the target repeats for
// every collection must not grow the history without end.
const MaxNotes = 50

// Failure reasons recorded by zdm itself.
const (
	ReasonSyncTimeLimit = "sync_time_limit"
)

// Decide returns the events a command yields on a migration, or the typed
// error that refuses it. It never changes m.
func Decide(m *Migration, cmd Command) ([]Event, error) {
	events, err := decide(m, cmd)
	if err != nil {
		return nil, err
	}
	// Every event must be allowed by the table, in order; this keeps Decide
	// and the transition table from drifting apart.
	state := string(m.State)
	for _, e := range events {
		next, ok := m.dst[[2]string{e.EventType(), state}]
		if !ok {
			return nil, &TransitionError{State: state, Event: e.EventType()}
		}
		state = next
	}
	return events, nil
}

func decide(m *Migration, cmd Command) ([]Event, error) {
	switch c := cmd.(type) {
	case RequestMigration:
		return requestMigration(m, c)
	case Lock:
		// The API and the saga both lock a new migration's source; the
		// saga may be steps ahead when the API records it.
		if m.State != StateRequested && m.State != StateNew && !IsTerminal(m.State) {
			return nil, nil
		}
		return []Event{Locked{SourceClusterID: m.Source.ID}}, nil
	case StartProvisioning:
		return []Event{ProvisioningStarted{Provisioner: m.Target.Provisioner}}, nil
	case RecordTarget:
		return []Event{c.Target}, nil
	case StartCopy:
		return []Event{c.Plan}, nil
	case RecordCopyProgress:
		return copyProgress(m, c.Progress), nil
	case CompleteCopy:
		return []Event{BulkCopied{Rows: m.CopiedRows}}, nil
	case SampleLag:
		return sampleLag(m, c)
	case RecordVerification:
		return []Event{c.Report}, nil
	case StopSync:
		return stopSync(m, c)
	case CompleteSwitch:
		return []Event{c.Switch}, nil
	case Fail:
		if c.Reason == "" {
			return nil, FieldError("reason", "is required")
		}
		return []Event{Failed{Reason: c.Reason, Detail: c.Detail}}, nil
	case SetCopyRateLimit:
		if err := validateCopyRateLimit(c.RowsPerSecond); err != nil {
			return nil, err
		}
		if _, ok := m.dst[[2]string{TypeCopyRateLimitChanged, string(m.State)}]; !ok {
			return nil, &TransitionError{State: string(m.State), Event: TypeCopyRateLimitChanged} // the copy has ended
		}
		if c.RowsPerSecond == m.Options.CopyRateLimit {
			return nil, nil
		}
		return []Event{CopyRateLimitChanged{RowsPerSecond: c.RowsPerSecond, By: c.Actor}}, nil
	case Cancel:
		if m.State == StateCancelled {
			return nil, nil
		}
		return []Event{Cancelled{By: c.Actor}}, nil
	case EnforceTimeLimit:
		if m.State != StateSyncing || c.Now.Before(m.SyncDeadline()) {
			return nil, nil
		}
		return []Event{Failed{Reason: ReasonSyncTimeLimit, Detail: fmt.Sprintf(
			"the sync was not stopped within %s of its start (%s)",
			time.Duration(m.Options.SyncTimeLimit), m.SyncStartedAt.UTC().Format(time.RFC3339))}}, nil
	case TakeDriving:
		switch {
		case IsTerminal(m.State) || m.Driver.Term == c.Term:
			return nil, nil
		case m.Driver.Term > c.Term:
			return nil, fmt.Errorf("%w: %s (term %d) took it over after term %d", ErrFenced, m.Driver.Instance, m.Driver.Term, c.Term)
		}
		return []Event{DriverChanged{Instance: c.Instance, Term: c.Term}}, nil
	case Note:
		if c.Text == "" {
			return nil, FieldError("note", "is required")
		}
		if IsTerminal(m.State) {
			return nil, &TransitionError{State: string(m.State), Event: TypeNoted}
		}
		if len(m.Notes) >= MaxNotes || slices.Contains(m.Notes, c.Text) {
			return nil, nil
		}
		return []Event{Noted{Note: c.Text}}, nil
	case RecordNotification:
		if m.Notifications[c.Kind] {
			return nil, nil
		}
		return []Event{NotificationSent{Kind: c.Kind, Recipients: c.Recipients, Refused: c.Refused}}, nil
	}
	return nil, fmt.Errorf("%w: unknown command %T", ErrInvalid, cmd)
}

func requestMigration(m *Migration, c RequestMigration) ([]Event, error) {
	if m.State != StateNew {
		return nil, &TransitionError{State: string(m.State), Event: TypeMigrationRequested}
	}
	if c.ID == "" {
		return nil, FieldError("id", "is required")
	}
	if err := c.Target.Validate(); err != nil {
		return nil, err
	}
	if err := c.Options.Validate(); err != nil {
		return nil, err
	}
	if c.Target.Organization == "" {
		c.Target.Organization = c.Source.Organization
	}
	if c.Target.Organization != c.Source.Organization {
		return nil, fmt.Errorf("%w: source %s is in %q, target project %s is in %q: a migration stays in its organization",
			ErrCrossOrganization, c.Source.Name, c.Source.Organization, c.Target.Project, c.Target.Organization)
	}
	return []Event{MigrationRequested{
		ID: c.ID, Source: c.Source, Target: c.Target, Options: c.Options.WithDefaults(),
		RequestedBy: c.Actor, Organization: c.Source.Organization,
	}}, nil
}

func sampleLag(m *Migration, c SampleLag) ([]Event, error) {
	if c.LagSeconds < 0 {
		return nil, FieldError("lag_seconds", "must not be negative")
	}
	events := []Event{LagSampled{LagSeconds: c.LagSeconds, Crossed: m.crossed(c.LagSeconds)}}
	if m.State == StateSyncing && !m.ThresholdReached && c.LagSeconds < m.Options.LagThresholdSeconds {
		events = append(events, LagThresholdReached{LagSeconds: c.LagSeconds})
	}
	return events, nil
}

func stopSync(m *Migration, c StopSync) ([]Event, error) {
	if m.State != StateSyncing {
		return nil, &TransitionError{State: string(m.State), Event: TypeSyncStopped}
	}
	if !c.ConfirmWritesStopped {
		return nil, ErrConfirmationRequired
	}
	if !c.Now.IsZero() && !c.Now.Before(m.SyncDeadline()) {
		return nil, fmt.Errorf("%w: the limit was %s", ErrSyncTimeLimit, m.SyncDeadline().UTC().Format(time.RFC3339))
	}
	under := m.Lag.Sampled && m.Lag.Seconds < m.Options.LagThresholdSeconds
	if !under && !c.Force {
		return nil, &LagError{LagSeconds: m.Lag.Seconds, ThresholdSeconds: m.Options.LagThresholdSeconds, Sampled: m.Lag.Sampled}
	}
	return []Event{SyncStopped{ConfirmedBy: c.Actor, Forced: c.Force && !under, LagSeconds: m.Lag.Seconds}}, nil
}

// copyProgress records a range once, whoever copied it (several zdmd may
// share a copy, and a range whose copier died is copied again), and marks
// its collection done with the last of its planned ranges.
func copyProgress(m *Migration, p BulkCopyProgressed) []Event {
	if p.Plan != nil {
		// The first plan of a collection stands: its ranges name the
		// checkpoints. A second (a stale copier's) changes nothing; a
		// partition is planned again only while nothing of it is
		// imported.
		for _, c := range m.Collections {
			if c.Database != p.Database || c.Collection != p.Collection || len(c.Planned) == 0 {
				continue
			}
			if p.Replanned == "" || c.Done || c.hasStep(ImportStep+"/"+p.Replanned+"/") {
				return nil
			}
		}
		p.Range, p.Rows, p.Done, p.Skipped = "", 0, false, ""
		return []Event{p}
	}
	if p.Range == "" || p.Skipped != "" {
		return []Event{p}
	}
	for _, c := range m.Collections {
		if c.Database != p.Database || c.Collection != p.Collection {
			continue
		}
		if _, seen := c.DoneRanges[p.Range]; seen {
			if p.Done && !c.Done {
				// A copier that ends the collection with a range recorded
				// before still ends it (a plan without named ranges).
				return []Event{p}
			}
			return nil
		}
		if !p.Done && len(c.Planned) > 0 {
			p.Done = true
			for _, r := range c.Planned {
				if _, done := c.DoneRanges[r]; !done && r != p.Range {
					p.Done = false
					break
				}
			}
		}
	}
	return []Event{p}
}
