// Package handlers runs zdm's commands and its saga: command handlers
// decide through the domain and append to the event log; reactors follow
// the events and drive each migration through its steps.
package handlers

import (
	"context"
	"time"

	"github.com/zdm-io/zdm/domain"
)

// EventLog appends and loads an aggregate's events by subject.
type EventLog interface {
	Append(ctx context.Context, subject string, expected uint64, b domain.Batch) (uint64, error)
	Load(ctx context.Context, subject string, after uint64) ([]domain.Record, uint64, error)
}

// Clock tells the time; tests pass one they control.
type Clock interface{ Now() time.Time }

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

// CredentialStore keeps credentials out of events, logs and responses.
type CredentialStore interface {
	Put(ctx context.Context, clusterID string, c domain.Credentials) error
	Get(ctx context.Context, clusterID string) (domain.Credentials, error)
	Delete(ctx context.Context, clusterID string) error
}

// Directory knows which projects each organization has.
type Directory interface {
	HasProject(org, project string) bool
}

// OpenDirectory accepts every project of every organization.
type OpenDirectory struct{}

// HasProject always reports true.
func (OpenDirectory) HasProject(string, string) bool { return true }

// Provisioner yields a new, empty target for a migration. Both calls are
// idempotent by migration ID: a retried Provision returns the same target.
type Provisioner interface {
	Provision(ctx context.Context, m *domain.Migration) (domain.Target, error)
	Release(ctx context.Context, m *domain.Migration) error
}

// Copier moves what exists on the source to the target.
type Copier interface {
	// Plan reads the source and returns what will be copied.
	Plan(ctx context.Context, m *domain.Migration) (domain.CopyStarted, error)
	// Copy copies what m's checkpoints do not cover yet, calling
	// checkpoint after each finished range.
	Copy(ctx context.Context, m *domain.Migration, checkpoint func(context.Context, domain.BulkCopyProgressed) error) error
}

// Syncer keeps the target caught up with the source and switches traffic.
type Syncer interface {
	// Arm starts capturing the source's writes (from Locked on, before the
	// copy) and, once there is a target, applying them. Arming again, as
	// every step does after a restart, changes nothing.
	Arm(ctx context.Context, m *domain.Migration) error
	// Sync applies live writes to the target until ctx ends, reporting
	// the lag (seconds) about once a second.
	Sync(ctx context.Context, m *domain.Migration, lag func(context.Context, float64) error) error
	// Switch drains what is left and checks the target while writes are
	// held; it returns that check too. On success the writes stay held
	// until route is called: with true once the switch is recorded (they
	// go on to the target), with false if it could not be (they go on to
	// the source). Recording first means a zdmd that dies in between never
	// has sent writes to the target that its restart would send to the
	// source. On an error the writes already go on to the source.
	Switch(ctx context.Context, m *domain.Migration) (sw domain.SwitchedOver, check domain.Verified, route func(toTarget bool), err error)
	// Disarm stops capturing writes for a migration that ended.
	Disarm(ctx context.Context, m *domain.Migration) error
}

// Verifier compares source and target.
type Verifier interface {
	Verify(ctx context.Context, m *domain.Migration, phase string) (domain.Verified, error)
}

// Steps are the data-plane parts the saga drives.
type Steps struct {
	Provisioners map[string]Provisioner
	Copier       Copier
	Syncer       Syncer
	Verifier     Verifier
	// Source, when set, checks the locked source before anything is
	// provisioned.
	Source SourceChecker
}

// SourceChecker refuses a source that cannot be migrated as it is, with a
// permanent StepError naming why (R5: a bulk import in progress).
type SourceChecker interface {
	CheckSource(ctx context.Context, m *domain.Migration) error
}
