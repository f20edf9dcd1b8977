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

// transitions is the whole transition table, derived from EventKinds.
// An event that keeps the state has Dst equal to Src, one row per state.
func transitions() []fsm.EventDesc {
	var table []fsm.EventDesc
	for _, k := range EventKinds() {
		if k.Aggregate != "migration" {
			continue
		}
		if k.to != "" {
			src := make([]string, len(k.from))
			for i, s := range k.from {
				src[i] = string(s)
			}
			table = append(table, fsm.EventDesc{Name: k.Type, Src: src, Dst: string(k.to)})
			continue
		}
		for _, s := range k.from {
			table = append(table, fsm.EventDesc{Name: k.Type, Src: []string{string(s)}, Dst: string(s)})
		}
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
