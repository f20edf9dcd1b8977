package eventstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/zdm-io/zdm/eventstore"
)

// A bucket read whole (the write intents a dead zdmd left, the repairs to
// make again at the switch) is read through a consumer the cluster places
// on any of the bucket's members, one restarted after losing its disk
// too, while it catches up. Every read must hold every key all the same:
// a missing intent is a write the source applied that never reaches the
// target.
func TestABucketReadWhileAWipedNodeCatchesUpHoldsEveryKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	c := startCluster(t)
	nc := clusterConn(t, c)
	js, _ := jetstream.New(nc)
	st, err := eventstore.Open(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := st.KV(ctx, "CATCHUP_TEST")
	if err != nil {
		t.Fatal(err)
	}
	// Enough data that a member restarted empty takes a while to catch up.
	const keys = 1500
	value := make([]byte, 8<<10)
	for i := range keys {
		if err := kv.Put(ctx, fmt.Sprintf("k.%d", i), value); err != nil {
			t.Fatal(err)
		}
	}
	for i := range keys / 10 {
		if err := kv.Delete(ctx, fmt.Sprintf("k.%d", i*10)); err != nil {
			t.Fatal(err)
		}
	}
	want := keys - keys/10
	reads, short := 0, 0
	for victim := range c.Nodes {
		c.Kill(victim)
		if err := c.Wipe(victim); err != nil {
			t.Fatal(err)
		}
		if err := c.Restart(victim); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(4 * time.Second); time.Now().Before(end); {
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			got, err := kv.Matching(rctx, "k.*")
			rcancel()
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue // no answer is fine; a wrong one is not
			}
			reads++
			if len(got) != want {
				short++
				t.Errorf("after node %d was wiped: a read returned %d keys, not the %d the bucket holds", victim, len(got), want)
			}
		}
		if err := c.WaitReady(ctx, time.Minute); err != nil {
			t.Fatal(err)
		}
		waitCaughtUp(ctx, t, js, "KV_CATCHUP_TEST")
	}
	if reads == 0 {
		t.Fatal("no read answered while the wiped nodes caught up")
	}
	t.Logf("%d reads while wiped nodes caught up, %d short", reads, short)
}

// waitCaughtUp waits until every member of a stream is current. Each
// ask has a deadline of its own: an answer lost while the cluster elects
// a leader must cost one try, not the test's whole time.
func waitCaughtUp(ctx context.Context, t *testing.T, js jetstream.JetStream, stream string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := js.Stream(actx, stream)
		cancel()
		if err != nil {
			last = err.Error()
			continue
		}
		cl := info.CachedInfo().Cluster
		if cl != nil && len(cl.Replicas) == 2 && caughtUp(cl) {
			return
		}
		last = describeCluster(cl)
	}
	t.Fatalf("%s did not catch up in two minutes; last seen: %s", stream, last)
}

func describeCluster(cl *jetstream.ClusterInfo) string {
	if cl == nil {
		return "no cluster information"
	}
	out := fmt.Sprintf("leader %q", cl.Leader)
	for _, r := range cl.Replicas {
		out += fmt.Sprintf("; %s current=%t offline=%t lag=%d active=%s", r.Name, r.Current, r.Offline, r.Lag, r.Active)
	}
	return out
}
