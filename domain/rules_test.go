package domain

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func syncingSince(start time.Time, lag float64, sampled bool) *Migration {
	m := migrationIn(StateSyncing)
	m.SyncStartedAt = start
	m.Lag = LagInfo{Seconds: lag, Sampled: sampled}
	return m
}

func TestRequestMigrationRules(t *testing.T) {
	src := ClusterRef{ID: "c1", Name: "prod", Organization: "acme", Project: "search"}
	good := RequestMigration{ID: "m1", Source: src, Actor: "alice",
		Target: TargetSpec{Name: "prod-new", Project: "search", Provisioner: ProvisionerLocal}}
	tests := []struct {
		name  string
		given func(c *RequestMigration)
		want  error
		field string
	}{
		{"valid", func(c *RequestMigration) {}, nil, ""},
		{"R1 other organization", func(c *RequestMigration) { c.Target.Organization = "globex" }, ErrCrossOrganization, ""},
		{"same organization spelled out", func(c *RequestMigration) { c.Target.Organization = "acme" }, nil, ""},
		{"missing target name", func(c *RequestMigration) { c.Target.Name = "" }, ErrInvalid, "target.name"},
		{"bad provisioner", func(c *RequestMigration) { c.Target.Provisioner = "aws" }, ErrInvalid, "target.provisioner"},
		{"bad policy", func(c *RequestMigration) { c.Options.OnForbiddenOp = "ignore" }, ErrInvalid, "options.on_forbidden_op"},
		{"negative threshold", func(c *RequestMigration) { c.Options.LagThresholdSeconds = -1 }, ErrInvalid, "options.lag_threshold_seconds"},
		{"bad email", func(c *RequestMigration) { c.Options.Notify = []string{"ops@x", "not an address"} }, ErrInvalid, "options.notify[1]"},
		{"email with a space", func(c *RequestMigration) { c.Options.Notify = []string{" ops@x"} }, ErrInvalid, "options.notify[0]"},
		{"email with a display name", func(c *RequestMigration) { c.Options.Notify = []string{"ops@x", "Ops <ops@x>"} }, ErrInvalid, "options.notify[1]"},
		{"emails", func(c *RequestMigration) { c.Options.Notify = []string{"ops@x", "oncall+zdm@example.com"} }, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := good
			tt.given(&cmd)
			events, err := Decide(NewMigration(), cmd)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var ve *ValidationError
			if tt.field != "" && (!errors.As(err, &ve) || ve.Field != tt.field) {
				t.Fatalf("want field %s, got %v", tt.field, err)
			}
			if tt.want == nil {
				req := events[0].(MigrationRequested)
				if req.Options.LagThresholdSeconds != 10 || time.Duration(req.Options.SyncTimeLimit) != 7*24*time.Hour || req.Options.OnForbiddenOp != PolicyReject {
					t.Fatalf("defaults not applied: %+v", req.Options)
				}
			}
		})
	}
	// A second request for the same ID is refused.
	m := migrationIn(StateRequested)
	if _, err := Decide(m, good); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("re-request: %v", err)
	}
}

func TestStopSyncRules(t *testing.T) {
	tests := []struct {
		name    string
		m       *Migration
		cmd     StopSync
		want    error
		forced  bool
		wantLag float64
	}{
		{"R9 confirmation required", syncingSince(t0, 1, true), StopSync{Now: t0.Add(time.Hour)}, ErrConfirmationRequired, false, 0},
		{"under threshold", syncingSince(t0, 3, true), StopSync{ConfirmWritesStopped: true, Now: t0.Add(time.Hour)}, nil, false, 3},
		{"above threshold", syncingSince(t0, 42, true), StopSync{ConfirmWritesStopped: true, Now: t0.Add(time.Hour)}, ErrLagAboveThreshold, false, 0},
		{"above threshold forced", syncingSince(t0, 42, true), StopSync{ConfirmWritesStopped: true, Force: true, Now: t0.Add(time.Hour)}, nil, true, 42},
		{"never sampled", syncingSince(t0, 0, false), StopSync{ConfirmWritesStopped: true, Now: t0.Add(time.Hour)}, ErrLagAboveThreshold, false, 0},
		{"R10 past the limit", syncingSince(t0, 1, true), StopSync{ConfirmWritesStopped: true, Now: t0.Add(8 * 24 * time.Hour)}, ErrSyncTimeLimit, false, 0},
		{"not syncing", migrationIn(StateCopying), StopSync{ConfirmWritesStopped: true}, ErrInvalidTransition, false, 0},
		{"terminal", migrationIn(StateSwitchedOver), StopSync{ConfirmWritesStopped: true}, ErrTerminal, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := Decide(tt.m, tt.cmd)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want != nil {
				if events != nil {
					t.Fatalf("refusal yielded events %v", events)
				}
				return
			}
			s := events[0].(SyncStopped)
			if s.Forced != tt.forced || s.LagSeconds != tt.wantLag {
				t.Fatalf("got %+v", s)
			}
		})
	}
	var le *LagError
	_, err := Decide(syncingSince(t0, 42, true), StopSync{ConfirmWritesStopped: true, Now: t0})
	if !errors.As(err, &le) || le.LagSeconds != 42 || le.ThresholdSeconds != 10 {
		t.Fatalf("lag error does not carry the lag: %v", err)
	}
}

func TestSyncTimeLimitWithInjectedClock(t *testing.T) {
	m := syncingSince(t0, 50, true)
	m.Options.SyncTimeLimit = Duration(time.Minute)
	for _, tc := range []struct {
		now  time.Time
		fail bool
	}{
		{t0.Add(59 * time.Second), false},
		{t0.Add(time.Minute), true},
		{t0.Add(time.Hour), true},
	} {
		events, err := Decide(m, EnforceTimeLimit{Now: tc.now})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(events) == 1; got != tc.fail {
			t.Fatalf("at %s: failed = %v, want %v", tc.now.Sub(t0), got, tc.fail)
		}
		if tc.fail && events[0].(Failed).Reason != ReasonSyncTimeLimit {
			t.Fatalf("reason = %s", events[0].(Failed).Reason)
		}
	}
	// Outside the sync there is nothing to enforce.
	if ev, _ := Decide(migrationIn(StateCopying), EnforceTimeLimit{Now: t0.Add(1000 * time.Hour)}); ev != nil {
		t.Fatalf("copying migration failed by time limit: %v", ev)
	}
}

func TestLagThresholdReachedOnce(t *testing.T) {
	m := syncingSince(t0, 30, true)
	ev, _ := Decide(m, SampleLag{LagSeconds: 20})
	if len(ev) != 1 {
		t.Fatalf("above threshold: %v", ev)
	}
	ev, _ = Decide(m, SampleLag{LagSeconds: 2})
	if len(ev) != 2 || ev[1].EventType() != TypeLagThresholdReached {
		t.Fatalf("first time under: %v", ev)
	}
	for i, e := range ev {
		if err := m.Apply(Record{Seq: uint64(10 + i), Event: e}); err != nil {
			t.Fatal(err)
		}
	}
	ev, _ = Decide(m, SampleLag{LagSeconds: 1})
	if len(ev) != 1 {
		t.Fatalf("second time under: %v", ev)
	}
}

func TestTerminalStatesAcceptNothing(t *testing.T) {
	cmds := []Command{Lock{}, StartProvisioning{}, RecordTarget{}, StartCopy{}, RecordCopyProgress{},
		CompleteCopy{}, SampleLag{}, RecordVerification{}, StopSync{ConfirmWritesStopped: true, Force: true},
		CompleteSwitch{}, Fail{Reason: "x"}}
	for _, s := range []State{StateSwitchedOver, StateFailed, StateCancelled} {
		for _, c := range cmds {
			if _, err := Decide(migrationIn(s), c); !errors.Is(err, ErrTerminal) {
				t.Errorf("%s accepted %s: %v", s, c.commandName(), err)
			}
		}
		if _, err := Decide(migrationIn(s), Cancel{Actor: "a"}); s != StateCancelled && !errors.Is(err, ErrTerminal) {
			t.Errorf("%s accepted cancel: %v", s, err)
		}
	}
	// Cancel is idempotent.
	if ev, err := Decide(migrationIn(StateCancelled), Cancel{Actor: "a"}); ev != nil || err != nil {
		t.Fatalf("cancel of cancelled: %v %v", ev, err)
	}
	// A notification is recorded once.
	m := migrationIn(StateFailed)
	ev, err := Decide(m, RecordNotification{Kind: "failed"})
	if err != nil || len(ev) != 1 {
		t.Fatalf("first notification: %v %v", ev, err)
	}
	_ = m.Apply(Record{Seq: 9, Event: ev[0]})
	if ev, _ := Decide(m, RecordNotification{Kind: "failed"}); ev != nil {
		t.Fatalf("notification recorded twice: %v", ev)
	}
}

func TestClusterLockAndDelete(t *testing.T) {
	c := &Cluster{}
	c.Apply(Record{Seq: 1, Event: ClusterRegistered{ID: "c1", Name: "prod", Organization: "acme"}})
	if c.Status() != StatusRunning {
		t.Fatalf("status %s", c.Status())
	}
	ev, err := c.LockFor("m1")
	if err != nil || len(ev) != 1 {
		t.Fatalf("lock: %v %v", ev, err)
	}
	c.Apply(Record{Seq: 2, Event: ev[0]})
	if c.Status() != StatusLocked {
		t.Fatalf("status %s", c.Status())
	}
	if ev, err := c.LockFor("m1"); ev != nil || err != nil {
		t.Fatalf("relock by the same migration: %v %v", ev, err)
	}
	var be *BusyError
	if _, err := c.LockFor("m2"); !errors.As(err, &be) || be.MigrationID != "m1" {
		t.Fatalf("second migration: %v", err)
	}
	if _, err := c.Delete("alice"); !errors.Is(err, ErrClusterLocked) {
		t.Fatalf("R5 delete of a locked cluster: %v", err)
	}
	c.Apply(Record{Seq: 3, Event: ClusterUnlocked{MigrationID: "m1", Migrated: true}})
	if c.Status() != StatusMigrated {
		t.Fatalf("status %s", c.Status())
	}
	if _, err := c.Delete("alice"); err != nil {
		t.Fatalf("delete: %v", err)
	}
}

// HeldSince names the event that made the holder hold the cluster, the
// order in which two holds of one Milvus are settled; a later event of
// the same holder does not move it.
func TestHeldSinceIsTheEventThatTookTheHold(t *testing.T) {
	c := &Cluster{}
	c.Apply(Record{Seq: 4, Event: ClusterRegistered{ID: "c1", Endpoint: "m:19530"}})
	if c.HeldSince() != 0 {
		t.Fatalf("a free cluster held since %d", c.HeldSince())
	}
	c.Apply(Record{Seq: 7, Event: ClusterLocked{MigrationID: "m1"}})
	c.Apply(Record{Seq: 9, Event: ClusterUpdated{}})
	c.Apply(Record{Seq: 11, Event: ClusterLocked{MigrationID: "m1"}})
	if c.HeldBy() != "m1" || c.HeldSince() != 7 {
		t.Fatalf("locked: held by %q since %d, want m1 since 7", c.HeldBy(), c.HeldSince())
	}
	c.Apply(Record{Seq: 12, Event: ClusterUnlocked{MigrationID: "m1"}})
	c.Apply(Record{Seq: 13, Event: ClusterClaimed{MigrationID: "m2"}})
	if c.HeldBy() != "m2" || c.HeldSince() != 13 {
		t.Fatalf("claimed: held by %q since %d, want m2 since 13", c.HeldBy(), c.HeldSince())
	}
	t2 := &Cluster{}
	t2.Apply(Record{Seq: 20, Event: ClusterRegistered{ID: "c2", MigrationID: "m3"}})
	if t2.HeldBy() != "m3" || t2.HeldSince() != 20 {
		t.Fatalf("registered as a target: held by %q since %d, want m3 since 20", t2.HeldBy(), t2.HeldSince())
	}
}

func TestFoldRejectsInvalidHistory(t *testing.T) {
	good := []Record{{Seq: 1, Event: sampleEvent(TypeMigrationRequested)}, {Seq: 2, Event: Locked{}}}
	if m, err := Fold(good); err != nil || m.State != StateLocked {
		t.Fatalf("good history: %v", err)
	}
	bad := append(good, Record{Seq: 3, Event: SwitchedOver{}})
	if _, err := Fold(bad); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("bad history: %v", err)
	}
}

func TestLockIsANoOpOnceTheFlowMovedOn(t *testing.T) {
	for _, s := range []State{StateLocked, StateProvisioning, StateTargetProvisioned, StateCopying, StateSyncing, StateSyncStopped} {
		if ev, err := Decide(migrationIn(s), Lock{}); ev != nil || err != nil {
			t.Errorf("%s: %v %v", s, ev, err)
		}
	}
	if ev, err := Decide(migrationIn(StateRequested), Lock{}); err != nil || len(ev) != 1 {
		t.Fatalf("requested: %v %v", ev, err)
	}
}

// A note is recorded once, at most MaxNotes of them, and none after the
// migration ended.
func TestNotesAreRecordedOnceAndBounded(t *testing.T) {
	m := migrationIn(StateSyncing)
	if _, err := Decide(m, Note{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty note: %v", err)
	}
	for i := range MaxNotes + 1 {
		text := fmt.Sprintf("note %d", i)
		ev, err := Decide(m, Note{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		if want := min(1, MaxNotes-i); len(ev) != want {
			t.Fatalf("note %d gave %v, want %d events", i, ev, want)
		}
		for _, e := range ev {
			_ = m.Apply(Record{Seq: m.Version + 1, Event: e})
		}
		if ev, _ := Decide(m, Note{Text: text}); ev != nil {
			t.Fatalf("note %d recorded twice: %v", i, ev)
		}
	}
	if len(m.Notes) != MaxNotes || m.Notes[0] != "note 0" {
		t.Fatalf("notes %d, first %q", len(m.Notes), m.Notes[0])
	}
	if _, err := Decide(migrationIn(StateSwitchedOver), Note{Text: "late"}); !errors.Is(err, ErrTerminal) {
		t.Fatalf("a note after the end: %v", err)
	}
}

// A command refused in the migration's state says when it can be given,
// in words, not by the stored name of the event it would have recorded.
func TestRefusedCommandsSayWhenTheyCanBeGiven(t *testing.T) {
	for _, c := range []struct {
		m    *Migration
		cmd  Command
		want string
	}{
		{migrationIn(StateCopying), StopSync{ConfirmWritesStopped: true}, "the migration is copying; the sync can be stopped only while"},
		{migrationIn(StateSyncing), SetCopyRateLimit{RowsPerSecond: 5}, "the migration is syncing; the copy's rate limit can be changed until the copy ends"},
		{migrationIn(StateSwitchedOver), Cancel{}, "the migration is switched_over; a migration can be cancelled only until it ends"},
	} {
		_, err := Decide(c.m, c.cmd)
		if !errors.Is(err, ErrInvalidTransition) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "zdm.migration.") {
			t.Errorf("%T in %s: %v, want an invalid transition saying %q", c.cmd, c.m.State, err, c.want)
		}
	}
}
