package domain

import (
	"encoding/json"
	"fmt"
)

// EventKind describes one event type: its stored name, what it records,
// how a stored one is decoded and, for a migration's events, the states it
// may follow and the state it leads to. EventKinds is the one list of
// them: the decoder, the transition table and the operator guide's list
// are all derived from it or checked against it.
type EventKind struct {
	Type string
	// Aggregate is "migration" or "cluster".
	Aggregate string
	// Records says what the event records, for the operator guide.
	Records string
	// Sample marks the periodic measurements that a history's list of
	// steps leaves out.
	Sample bool
	decode func(data []byte) (Event, error)
	from   []State
	// to is the state after the event; "" keeps the state it followed.
	to State
}

func kind[T Event](aggregate, records string) EventKind {
	var zero T
	return EventKind{Type: zero.EventType(), Aggregate: aggregate, Records: records, decode: func(data []byte) (Event, error) {
		var e T
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, fmt.Errorf("decode %s: %w", zero.EventType(), err)
		}
		return e, nil
	}}
}

func (k EventKind) moves(from []State, to State) EventKind { k.from, k.to = from, to; return k }
func (k EventKind) stays(in ...State) EventKind            { k.from = in; return k }
func (k EventKind) sample() EventKind                      { k.Sample = true; return k }

// EventKinds lists every event type zdm records, migrations' in flow
// order, then clusters'.
func EventKinds() []EventKind {
	var active, all []State
	for _, s := range States() {
		all = append(all, s)
		if !IsTerminal(s) {
			active = append(active, s)
		}
	}
	const mig, cl = "migration", "cluster"
	return []EventKind{
		kind[MigrationRequested](mig, "a migration was asked for: source, target, options").moves([]State{StateNew}, StateRequested),
		kind[Locked](mig, "the source is locked for the migration").moves([]State{StateRequested}, StateLocked),
		kind[ProvisioningStarted](mig, "a provisioner was asked for the target").moves([]State{StateLocked}, StateProvisioning),
		kind[TargetProvisioned](mig, "the new, empty target: its cluster and endpoint").moves([]State{StateProvisioning}, StateTargetProvisioned),
		kind[CopyStarted](mig, "the copy's plan and the preflight report").moves([]State{StateTargetProvisioned}, StateCopying),
		kind[BulkCopyProgressed](mig, "a checkpoint: one key range of a collection is on the target, or a collection's ranges as the copy planned them").stays(StateCopying),
		kind[CopyRateLimitChanged](mig, "an operator changed the limit on the rows per second the row copy reads").
			stays(StateRequested, StateLocked, StateProvisioning, StateTargetProvisioned, StateCopying),
		kind[BulkCopied](mig, "the copy ended; the sync begins").moves([]State{StateCopying}, StateSyncing),
		kind[LagSampled](mig, "the sync lag, at lag_record_interval and whenever it crosses the threshold").stays(StateCopying, StateSyncing, StateSyncStopped).sample(),
		kind[LagThresholdReached](mig, "the first time the lag went under the threshold").stays(StateSyncing),
		kind[Verified](mig, "a comparison of source and target: after the copy, at the switch").stays(StateCopying, StateSyncing, StateSyncStopped),
		kind[SyncStopped](mig, "the operator confirmed that writes stopped").moves([]State{StateSyncing}, StateSyncStopped),
		kind[SwitchedOver](mig, "traffic goes to the target, and the write pause").moves([]State{StateSyncStopped}, StateSwitchedOver),
		kind[Noted](mig, "what the operator should know that did not stop the migration: the target could not do as the source did, and what to do").stays(active...),
		kind[DriverChanged](mig, "a zdmd took over driving the migration (several zdmd share a NATS): its name and lease term").stays(active...),
		kind[Failed](mig, "the migration failed, with the reason").moves(active, StateFailed),
		kind[Cancelled](mig, "an operator cancelled the migration").moves(active, StateCancelled),
		// A notification about an ending is sent after the ending, so it
		// is the one record a terminal migration takes.
		kind[NotificationSent](mig, "an email was sent, so it is never sent twice: whom it reached, and whom the mail server refused for good").stays(all...),
		kind[ClusterRegistered](cl, "a cluster joined the registry"),
		kind[ClusterUpdated](cl, "an operator changed a cluster's endpoint, proxy, spare flag or credentials"),
		kind[ClusterLocked](cl, "the cluster is the locked source of a migration"),
		kind[ClusterUnlocked](cl, "the lock is released; after a switch, the cluster is migrated"),
		kind[ClusterClaimed](cl, "the cluster is the target of a migration"),
		kind[ClusterActivated](cl, "the target became the live cluster"),
		kind[ClusterReleased](cl, "a target handed back after a failed or cancelled migration"),
		kind[ClusterDeleted](cl, "the cluster left the registry"),
	}
}

// kindsByType indexes EventKinds by stored type name. It is built once
// and never changed.
var kindsByType = func() map[string]EventKind {
	out := map[string]EventKind{}
	for _, k := range EventKinds() {
		out[k.Type] = k
	}
	return out
}()

// DecodeEvent turns a stored type name and JSON body back into an event.
func DecodeEvent(typ string, data []byte) (Event, error) {
	k, ok := kindsByType[typ]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownEventType, typ)
	}
	return k.decode(data)
}

// MigrationEventTypes lists every migration event type, in flow order.
func MigrationEventTypes() []string {
	var out []string
	for _, k := range EventKinds() {
		if k.Aggregate == "migration" {
			out = append(out, k.Type)
		}
	}
	return out
}

// IsStep reports whether an event is a step of a history rather than a
// periodic sample; a lag sample that crossed the threshold is a step.
func IsStep(e Event) bool {
	if l, ok := e.(LagSampled); ok && l.Crossed != "" {
		return true
	}
	return !kindsByType[e.EventType()].Sample
}
