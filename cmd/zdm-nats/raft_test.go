package main

import (
	"testing"
	"time"
)

// The variables bound by name must be nats-server's own: were a binding
// to make a variable of its own, the timings replaced would be zero, not
// nats-server's defaults, and setting them would change nothing.
func TestTheRaftTimingsSetAreNATSServersOwn(t *testing.T) {
	was := setRaft(fast)
	defer setRaft(was)
	defaults := Timings{Heartbeat: time.Second, ElectionMin: 4 * time.Second, ElectionMax: 9 * time.Second,
		LostQuorum: 10 * time.Second, LostQuorumTick: 10 * time.Second}
	if was != defaults {
		t.Fatalf("timings replaced: %+v; nats-server's defaults are %+v", was, defaults)
	}
	if now := setRaft(fast); now != fast {
		t.Fatalf("timings after setting them: %+v, want %+v", now, fast)
	}
	if fast.ElectionMin < 10*fast.Heartbeat || fast.ElectionMax <= fast.ElectionMin {
		t.Fatalf("an election must wait ten heartbeats at least and have a range to draw from: %+v", fast)
	}
}
