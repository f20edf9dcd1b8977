package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
	"github.com/zdm-io/zdm/eventstore/natscluster"
)

func startCluster(t *testing.T) *natscluster.Cluster {
	t.Helper()
	c, err := natscluster.Start(context.Background(), t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

func clusterConn(t *testing.T, c *natscluster.Cluster) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.URLs(), append(c.Options(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestTheEventLogContractHoldsOnAThreeNodeCluster(t *testing.T) {
	c := startCluster(t)
	estest.EventLog(t, func(t *testing.T) estest.Log {
		// Each case starts from an empty log, as on a fresh server.
		nc := clusterConn(t, c)
		js, _ := jetstream.New(nc)
		if err := js.DeleteStream(context.Background(), eventstore.StreamName); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatal(err)
		}
		st, err := eventstore.Open(context.Background(), nc)
		if err != nil {
			t.Fatal(err)
		}
		if st.Replicas() != 3 {
			t.Fatalf("replicas on a three-node cluster = %d, want 3", st.Replicas())
		}
		return st
	})
}

// A node, even the journal's leader, can be killed and its disk lost while
// writes go on: every acknowledged entry survives, and the node, restarted
// empty, catches up.
func TestAcknowledgedEntriesSurviveALostNodeAndItsDisk(t *testing.T) {
	survivesALostNodeAndItsDisk(t, startCluster(t))
}

// nats-cluster-tls.conf's cluster refuses a client without a certificate
// its CA signed, and keeps every acknowledged entry through a lost node
// and disk as the plain one does: the wiped node catches up over routes
// that speak TLS.
func TestATLSClusterRefusesStrangersAndSurvivesALostNode(t *testing.T) {
	certs := milvustest.NewCerts(t)
	c, err := natscluster.StartTLS(context.Background(), t.TempDir(), 3, certs.NATSCluster())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	if !strings.HasPrefix(c.URLs(), "tls://") {
		t.Fatalf("client addresses %s", c.URLs())
	}
	for _, tc := range []struct {
		name string
		opts []nats.Option
	}{
		{"without a client certificate", []nats.Option{nats.RootCAs(certs.Path("ca.pem"))}},
		{"without the CA", []nats.Option{nats.ClientCert(certs.Path("client.pem"), certs.Path("client.key"))}},
		{"whose certificate is for servers only", []nats.Option{nats.RootCAs(certs.Path("ca.pem")), nats.ClientCert(certs.Path("proxy.pem"), certs.Path("proxy.key"))}},
	} {
		nc, err := nats.Connect(c.URLs(), append(tc.opts, nats.Timeout(2*time.Second), nats.NoReconnect())...)
		if err == nil {
			nc.Close()
			t.Fatalf("a client %s was let in", tc.name)
		}
		t.Logf("a client %s: %v", tc.name, err)
	}
	survivesALostNodeAndItsDisk(t, c)
}

// survivesALostNodeAndItsDisk kills the journal's leader while appends go
// on, wipes its store and restarts it: every acknowledged entry is kept
// and the node catches up.
func survivesALostNodeAndItsDisk(t *testing.T, c *natscluster.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nc := clusterConn(t, c)
	st, err := eventstore.Open(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	j, err := st.OpenJournal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := st.KV(ctx, "HA_TEST")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	for _, name := range []string{eventstore.StreamName, eventstore.JournalStream, "KV_HA_TEST"} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if r := s.CachedInfo().Config.Replicas; r != 3 {
			t.Fatalf("%s has %d replicas, want 3", name, r)
		}
	}

	var (
		mu    sync.Mutex
		acked = map[uint64]string{}
		fails int
		// The longest wait between two acknowledged appends: the stall
		// captured writes see while the lost leader is replaced.
		lastAck time.Time
		longest time.Duration
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			payload := fmt.Sprintf("entry-%d", i)
			actx, acancel := context.WithTimeout(ctx, 2*time.Second)
			seq, err := j.Append(actx, fmt.Sprintf("zdm.journal.m.d_db.c_c%d", i%3), []byte(payload), "")
			acancel()
			mu.Lock()
			if err != nil {
				fails++
			} else {
				acked[seq] = payload
				now := time.Now()
				if !lastAck.IsZero() {
					longest = max(longest, now.Sub(lastAck))
				}
				lastAck = now
			}
			mu.Unlock()
		}
	}()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	waitFor := func(n int) {
		t.Helper()
		for start := count(); count() < start+n; {
			if ctx.Err() != nil {
				t.Fatal("appends stopped")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor(200)
	info, err := js.Stream(ctx, eventstore.JournalStream)
	if err != nil {
		t.Fatal(err)
	}
	leader := info.CachedInfo().Cluster.Leader
	victim := -1
	for i, n := range c.Nodes {
		if n.Name == leader {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("journal leader %q is not a node of the cluster", leader)
	}
	if err := kv.Put(ctx, "before", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	c.Kill(victim)
	if err := c.Wipe(victim); err != nil {
		t.Fatal(err)
	}
	waitFor(200) // writes go on with two nodes
	t.Logf("killed the journal's leader %s and wiped its disk; 200 appends acknowledged %.1fs later", leader, time.Since(killed).Seconds())
	if err := c.Restart(victim); err != nil {
		t.Fatal(err)
	}
	waitFor(200)
	close(stop)
	wg.Wait()

	// The wiped node catches up from the others.
	waitCaughtUp(ctx, t, js, eventstore.JournalStream)
	mu.Lock()
	defer mu.Unlock()
	for seq, want := range acked {
		for sub := range 3 {
			_, data, ok, err := j.Next(ctx, fmt.Sprintf("zdm.journal.m.d_db.c_c%d", sub), seq)
			if err != nil {
				t.Fatal(err)
			}
			if ok && string(data) == want {
				goto found
			}
		}
		t.Fatalf("acknowledged entry %d (%s) is gone", seq, want)
	found:
	}
	if v, err := kv.Get(ctx, "before"); err != nil || string(v) != "kept" {
		t.Fatalf("bucket value after the loss: %q, %v", v, err)
	}
	t.Logf("%d entries acknowledged and kept, %d appends failed while a leader was elected; longest wait between two acknowledged appends %.2fs",
		len(acked), fails, longest.Seconds())
}

func caughtUp(ci *jetstream.ClusterInfo) bool {
	if ci == nil || ci.Leader == "" {
		return false
	}
	for _, r := range ci.Replicas {
		if !r.Current || r.Offline || r.Lag > 0 {
			return false
		}
	}
	return true
}
