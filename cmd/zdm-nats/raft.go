package main

import (
	"time"
	_ "unsafe" // for go:linkname

	_ "github.com/nats-io/nats-server/v2/server" // the variables below live there
)

// nats-server keeps its Raft timings in package variables and lets no
// configuration change them. Its defaults (a heartbeat a second, a new
// leader elected 4-9 s after the old one went silent) suit a WAN; behind
// zdm every captured write waits on a stream leader, so a killed node
// stalls applications for as long as the election takes. These are the
// variables nats-server's own cluster tests shorten. A nats-server
// release that renames one makes this file fail to link, not run with
// the defaults unnoticed.

//go:linkname hbInterval github.com/nats-io/nats-server/v2/server.hbInterval
var hbInterval time.Duration

//go:linkname minElectionTimeout github.com/nats-io/nats-server/v2/server.minElectionTimeout
var minElectionTimeout time.Duration

//go:linkname maxElectionTimeout github.com/nats-io/nats-server/v2/server.maxElectionTimeout
var maxElectionTimeout time.Duration

//go:linkname lostQuorumInterval github.com/nats-io/nats-server/v2/server.lostQuorumInterval
var lostQuorumInterval time.Duration

//go:linkname lostQuorumCheck github.com/nats-io/nats-server/v2/server.lostQuorumCheck
var lostQuorumCheck time.Duration

// Timings are zdm-nats's Raft timings.
type Timings struct {
	Heartbeat                  time.Duration
	ElectionMin, ElectionMax   time.Duration
	LostQuorum, LostQuorumTick time.Duration
}

// fast elects a new leader 1-2 s after the old one's last heartbeat:
// ten heartbeats at least, so a follower slowed by a busy host does not
// call an election while its leader lives. A leader cut off from the
// others steps down after 5 s instead of 10.
var fast = Timings{
	Heartbeat:   100 * time.Millisecond,
	ElectionMin: time.Second, ElectionMax: 2 * time.Second,
	LostQuorum: 5 * time.Second, LostQuorumTick: 400 * time.Millisecond,
}

// setRaft sets nats-server's Raft timings, before any server starts, and
// returns the ones it replaced.
func setRaft(t Timings) Timings {
	was := Timings{hbInterval, minElectionTimeout, maxElectionTimeout, lostQuorumInterval, lostQuorumCheck}
	hbInterval, minElectionTimeout, maxElectionTimeout = t.Heartbeat, t.ElectionMin, t.ElectionMax
	lostQuorumInterval, lostQuorumCheck = t.LostQuorum, t.LostQuorumTick
	return was
}
