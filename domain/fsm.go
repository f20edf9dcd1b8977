package domain

import "github.com/looplab/fsm"

// State is where a migration is in its flow.
type State string

// Migration states.
const (
	StateNew               State = ""
	StateRequested         State = "requested"
	StateLocked            State = "locked"
	StateProvisioning      State = "provisioning"
	StateTargetProvisioned State = "target_provisioned"
	StateCopying           State = "copying"
	StateSyncing           State = "syncing"
	StateSyncStopped       State = "sync_stopped"
	StateSwitchedOver      State = "switched_over"
	StateFailed            State = "failed"
	StateCancelled         State = "cancelled"
)

// States lists every state a stored migration can be in.
func States() []State {
	return []State{StateRequested, StateLocked, StateProvisioning, StateTargetProvisioned,
		StateCopying, StateSyncing, StateSyncStopped, StateSwitchedOver, StateFailed, StateCancelled}
}

// IsTerminal reports whether a state ends the migration.
func IsTerminal(s State) bool {
	return s == StateSwitchedOver || s == StateFailed || s == StateCancelled
}

// Stage is the product's phase a state belongs to.
func (s State) Stage() string {
	switch s {
	case StateRequested, StateLocked, StateProvisioning, StateTargetProvisioned:
		return "initialization"
	case StateCopying, StateSyncing:
		return "migration"
	case StateSyncStopped, StateSwitchedOver:
		return "finalization"
	}
	return ""
}

// transitions is the whole transition table, keyed by event type. An event
// listed with Dst "" keeps the state it was applied in.
func transitions() []fsm.EventDesc {
	active := []string{}
	all := []string{}
	for _, s := range States() {
		all = append(all, string(s))
		if !IsTerminal(s) {
			active = append(active, string(s))
		}
	}
	table := []fsm.EventDesc{
		{Name: TypeMigrationRequested, Src: []string{string(StateNew)}, Dst: string(StateRequested)},
		{Name: TypeLocked, Src: []string{string(StateRequested)}, Dst: string(StateLocked)},
		{Name: TypeProvisioningStarted, Src: []string{string(StateLocked)}, Dst: string(StateProvisioning)},
		{Name: TypeTargetProvisioned, Src: []string{string(StateProvisioning)}, Dst: string(StateTargetProvisioned)},
		{Name: TypeCopyStarted, Src: []string{string(StateTargetProvisioned)}, Dst: string(StateCopying)},
		{Name: TypeBulkCopied, Src: []string{string(StateCopying)}, Dst: string(StateSyncing)},
		{Name: TypeSyncStopped, Src: []string{string(StateSyncing)}, Dst: string(StateSyncStopped)},
		{Name: TypeSwitchedOver, Src: []string{string(StateSyncStopped)}, Dst: string(StateSwitchedOver)},
		{Name: TypeFailed, Src: active, Dst: string(StateFailed)},
		{Name: TypeCancelled, Src: active, Dst: string(StateCancelled)},
	}
	stay := func(name string, states ...State) {
		for _, s := range states {
			table = append(table, fsm.EventDesc{Name: name, Src: []string{string(s)}, Dst: string(s)})
		}
	}
	stay(TypeBulkCopyProgressed, StateCopying)
	stay(TypeLagSampled, StateCopying, StateSyncing, StateSyncStopped)
	stay(TypeLagThresholdReached, StateSyncing)
	stay(TypeVerified, StateCopying, StateSyncing, StateSyncStopped)
	// A notification about an ending is sent after the ending, so it is the
	// one record a terminal migration takes; it changes nothing else.
	for _, s := range all {
		stay(TypeNotificationSent, State(s))
	}
	return table
}

// newMachine returns a state machine positioned at s.
func newMachine(s State) *fsm.FSM {
	return fsm.NewFSM(string(s), transitions(), nil)
}

// CanApply reports whether an event of type typ may follow state s.
func CanApply(s State, typ string) bool {
	return newMachine(s).Can(typ)
}
