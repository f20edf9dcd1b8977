package eventstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
)

func TestAStreamsStateIsTakenOnlyFromItsLeader(t *testing.T) {
	peer := func(name string) *jetstream.PeerInfo { return &jetstream.PeerInfo{Name: name} }
	info := func(replicas int, leader string, peers ...string) *jetstream.StreamInfo {
		i := &jetstream.StreamInfo{Config: jetstream.StreamConfig{Replicas: replicas}}
		if leader != "-" {
			i.Cluster = &jetstream.ClusterInfo{Leader: leader}
			for _, p := range peers {
				i.Cluster.Replicas = append(i.Cluster.Replicas, peer(p))
			}
		}
		return i
	}
	for _, c := range []struct {
		name string
		info *jetstream.StreamInfo
		want bool
	}{
		{"a single server", info(1, "-"), true},
		{"one replica on a cluster", info(1, "n1"), true},
		{"the leader, naming the others", info(3, "n1", "n2", "n3"), true},
		{"a follower, naming the leader among the others", info(3, "n1", "n1", "n3"), false},
		{"a member while the stream has no leader", info(3, "", "n1", "n3"), false},
	} {
		if got := eventstore.FromLeader(c.info); got != c.want {
			t.Errorf("%s: from the leader = %v, want %v", c.name, got, c.want)
		}
	}
}

// The surviving member of a stream whose other two nodes are gone answers
// for it with its own state, which after a lost disk may miss subjects:
// the migrations zdmd would capture, the journal's last entry. Such an
// answer is refused as the store being unavailable, never taken.
func TestSubjectsAreRefusedWhenNoLeaderAnswers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	started := time.Now()
	c := startCluster(t)
	nc := clusterConn(t, c)
	st, err := eventstore.Open(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	if _, err := js.Publish(ctx, domain.MigrationSubject+"m-1", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if subjects, err := st.Subjects(ctx, domain.MigrationSubject); err != nil || len(subjects) != 1 {
		t.Fatalf("subjects with a leader: %v, %v", subjects, err)
	}
	// A member answers without a leader only once it has run for ten
	// seconds (nats-server's startup threshold).
	time.Sleep(time.Until(started.Add(11 * time.Second)))
	// A follower survives: a leader that lost its quorum still answers,
	// rightly, until it steps down.
	info, err := js.Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	keep := 0
	for c.Nodes[keep].Name == info.CachedInfo().Cluster.Leader {
		keep++
	}
	survivor, err := nats.Connect(c.Nodes[keep].ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	defer survivor.Close()
	store, err := eventstore.Open(ctx, survivor)
	if err != nil {
		t.Fatal(err)
	}
	sjs, _ := jetstream.New(survivor)
	stream, err := sjs.Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	for i := range c.Nodes {
		if i != keep {
			c.Kill(i)
		}
	}
	leaderless := 0
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && leaderless < 3; {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		if info, err := stream.Info(rctx); err == nil && info.Cluster != nil && info.Cluster.Leader == "" {
			leaderless++
		}
		subjects, err := store.Subjects(rctx, domain.MigrationSubject)
		rcancel()
		if err == nil {
			t.Fatalf("subjects taken from a member without a leader: %v", subjects)
		}
		if !errors.Is(err, domain.ErrStoreUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("subjects without a leader: %v, want the store unavailable", err)
		}
	}
	if leaderless == 0 {
		t.Fatal("the surviving member never answered for the stream: the case this test guards did not happen")
	}
}
