package domain

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// sampleEvent returns an event of each type, good enough to apply.
func sampleEvent(typ string) Event {
	switch typ {
	case TypeMigrationRequested:
		return MigrationRequested{ID: "m1", Source: ClusterRef{ID: "c1", Organization: "acme"}}
	case TypeLocked:
		return Locked{SourceClusterID: "c1"}
	case TypeProvisioningStarted:
		return ProvisioningStarted{Provisioner: "local"}
	case TypeTargetProvisioned:
		return TargetProvisioned{ClusterID: "c2", Endpoint: "127.0.0.1:19531"}
	case TypeCopyStarted:
		return CopyStarted{Collections: []CollectionPlan{{Database: "default", Collection: "a", Rows: 10}}}
	case TypeBulkCopyProgressed:
		return BulkCopyProgressed{Database: "default", Collection: "a", Range: "r0", Rows: 10, Done: true}
	case TypeBulkCopied:
		return BulkCopied{Rows: 10}
	case TypeCopyRateLimitChanged:
		return CopyRateLimitChanged{RowsPerSecond: 5000, By: "alice"}
	case TypeLagSampled:
		return LagSampled{LagSeconds: 1}
	case TypeLagThresholdReached:
		return LagThresholdReached{LagSeconds: 1}
	case TypeVerified:
		return Verified{Phase: "copy", Equal: true}
	case TypeSyncStopped:
		return SyncStopped{ConfirmedBy: "alice"}
	case TypeSwitchedOver:
		return SwitchedOver{TargetEndpoint: "127.0.0.1:19531"}
	case TypeFailed:
		return Failed{Reason: "x"}
	case TypeCancelled:
		return Cancelled{By: "alice"}
	case TypeNotificationSent:
		return NotificationSent{Kind: "lag_under_threshold"}
	case TypeDriverChanged:
		return DriverChanged{Instance: "zdmd-2", Term: 7}
	case TypeNoted:
		return Noted{Note: "the target loaded default/a with 1 replica, not 2"}
	}
	panic("no sample for " + typ)
}

// migrationIn builds an aggregate positioned at s, the way a replay would.
func migrationIn(s State) *Migration {
	m := NewMigration()
	m.State = s
	m.machine.SetState(string(s))
	m.Options = Options{}.WithDefaults()
	return m
}

func TestEveryStateTimesEveryEvent(t *testing.T) {
	// Given the table as the product describes it, written out by hand so
	// that the implementation is checked against it, not against itself.
	allowed := map[State][]string{
		StateNew:               {TypeMigrationRequested},
		StateRequested:         {TypeCopyRateLimitChanged, TypeLocked, TypeFailed, TypeCancelled, TypeNotificationSent, TypeDriverChanged, TypeNoted},
		StateLocked:            {TypeCopyRateLimitChanged, TypeProvisioningStarted, TypeFailed, TypeCancelled, TypeNotificationSent, TypeDriverChanged, TypeNoted},
		StateProvisioning:      {TypeCopyRateLimitChanged, TypeTargetProvisioned, TypeFailed, TypeCancelled, TypeNotificationSent, TypeDriverChanged, TypeNoted},
		StateTargetProvisioned: {TypeCopyRateLimitChanged, TypeCopyStarted, TypeFailed, TypeCancelled, TypeNotificationSent, TypeDriverChanged, TypeNoted},
		StateCopying:           {TypeCopyRateLimitChanged, TypeBulkCopyProgressed, TypeBulkCopied, TypeLagSampled, TypeVerified, TypeFailed, TypeCancelled, TypeNotificationSent, TypeDriverChanged, TypeNoted},
		StateSyncing:           {TypeLagSampled, TypeLagThresholdReached, TypeVerified, TypeSyncStopped, TypeFailed, TypeCancelled, TypeNotificationSent, TypeDriverChanged, TypeNoted},
		StateSyncStopped:       {TypeLagSampled, TypeVerified, TypeSwitchedOver, TypeFailed, TypeCancelled, TypeNotificationSent, TypeDriverChanged, TypeNoted},
		StateSwitchedOver:      {TypeNotificationSent},
		StateFailed:            {TypeNotificationSent},
		StateCancelled:         {TypeNotificationSent},
	}
	next := map[string]State{
		TypeMigrationRequested: StateRequested, TypeLocked: StateLocked, TypeProvisioningStarted: StateProvisioning,
		TypeTargetProvisioned: StateTargetProvisioned, TypeCopyStarted: StateCopying, TypeBulkCopied: StateSyncing,
		TypeSyncStopped: StateSyncStopped, TypeSwitchedOver: StateSwitchedOver, TypeFailed: StateFailed, TypeCancelled: StateCancelled,
	}
	for state, ok := range allowed {
		isAllowed := map[string]bool{}
		for _, typ := range ok {
			isAllowed[typ] = true
		}
		for _, typ := range MigrationEventTypes() {
			t.Run(string(state)+"/"+typ, func(t *testing.T) {
				m := migrationIn(state)
				// When the event is applied
				err := m.Apply(Record{Seq: 7, At: time.Unix(100, 0), Event: sampleEvent(typ)})
				// Then it moves as the table says, or is refused with a typed error.
				if isAllowed[typ] {
					if err != nil {
						t.Fatalf("want allowed, got %v", err)
					}
					want := state
					if n, ok := next[typ]; ok {
						want = n
					}
					if m.State != want {
						t.Fatalf("state = %s, want %s", m.State, want)
					}
					if m.Version != 7 {
						t.Fatalf("version = %d, want 7", m.Version)
					}
					return
				}
				var te *TransitionError
				if !errors.As(err, &te) || !errors.Is(err, ErrInvalidTransition) {
					t.Fatalf("want TransitionError, got %v", err)
				}
				if IsTerminal(state) != errors.Is(err, ErrTerminal) {
					t.Fatalf("ErrTerminal match = %v for state %s", errors.Is(err, ErrTerminal), state)
				}
				if m.State != state {
					t.Fatalf("refused event moved state to %s", m.State)
				}
			})
		}
	}
}

func TestDecodeRoundTripsEveryEvent(t *testing.T) {
	for _, typ := range MigrationEventTypes() {
		e := sampleEvent(typ)
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeEvent(typ, data)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if got.EventType() != typ {
			t.Fatalf("decoded %s as %s", typ, got.EventType())
		}
	}
	if _, err := DecodeEvent("zdm.migration.nope.v1", []byte("{}")); !errors.Is(err, ErrUnknownEventType) {
		t.Fatalf("unknown type: %v", err)
	}
}
