package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/natscluster"
)

// nodeLossTrials is how many times each server's cluster loses the
// journal's leader node.
const nodeLossTrials = 4

// nodeLoss measures how long the capture journal takes no append when
// the node leading it is killed (SIGKILL), on three zdm-nats nodes and on
// three nats-server nodes of the same version: one writer appends
// without pause, each append cut after a second and tried again, as the
// proxy's are; the figure is the longest wait between two acknowledged
// appends around each kill.
func nodeLoss(ctx context.Context, dir string) error {
	servers := []struct {
		name  string
		build func(context.Context) (string, error)
	}{{"nats-server (baseline)", natscluster.NATSServer}, {"zdm-nats", natscluster.Binary}}
	fmt.Printf("a NATS node lost: the journal's leader killed while one writer appends (3 nodes, %d kills each)\n", nodeLossTrials)
	medians := make([]time.Duration, len(servers))
	for i, s := range servers {
		bin, err := s.build(ctx)
		if err != nil {
			return err
		}
		stalls, err := nodeLossStalls(ctx, bin, filepath.Join(dir, fmt.Sprintf("nodeloss-%d", i)))
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		slices.Sort(stalls)
		medians[i] = stalls[len(stalls)/2]
		fmt.Printf("  %-24s longest wait between acknowledged appends: median %5.2f s, worst %5.2f s   %v\n",
			s.name, medians[i].Seconds(), stalls[len(stalls)-1].Seconds(), rounded(stalls))
	}
	fmt.Printf("  ratio zdm-nats/nats-server (median) %5.2f   (goal: a client's gap <= 3 s)\n\n", medians[1].Seconds()/medians[0].Seconds())
	return nil
}

func nodeLossStalls(ctx context.Context, bin, dir string) ([]time.Duration, error) {
	c, err := natscluster.StartWith(ctx, bin, dir, 3)
	if err != nil {
		return nil, err
	}
	defer c.Stop()
	defer os.RemoveAll(dir)
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	st, err := eventstore.Open(ctx, nc)
	if err != nil {
		return nil, err
	}
	j, err := st.OpenJournal(ctx)
	if err != nil {
		return nil, err
	}
	js, _ := jetstream.New(nc)
	var stalls []time.Duration
	for range nodeLossTrials {
		leader, err := settledLeader(ctx, js, c)
		if err != nil {
			return nil, err
		}
		var last time.Time
		var longest time.Duration
		killed := false
		for acked := 0; acked < 300; {
			actx, cancel := context.WithTimeout(ctx, time.Second)
			_, err := j.Append(actx, "zdm.journal.bench.d_db.c_c", []byte("entry"), "")
			cancel()
			if err != nil {
				continue
			}
			now := time.Now()
			if killed {
				acked++
				longest = max(longest, now.Sub(last))
			}
			last = now
			if !killed {
				// The kill comes right after an acknowledged append.
				c.Kill(leader)
				killed = true
			}
		}
		stalls = append(stalls, longest)
		if err := c.Restart(leader); err != nil {
			return nil, err
		}
	}
	return stalls, nil
}

// settledLeader waits until the journal has a leader and every member is
// current, and returns the leader's node.
func settledLeader(ctx context.Context, js jetstream.JetStream, c *natscluster.Cluster) (int, error) {
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := js.Stream(actx, eventstore.JournalStream)
		cancel()
		if err != nil {
			continue
		}
		cl := s.CachedInfo().Cluster
		if cl == nil || cl.Leader == "" || len(cl.Replicas) != 2 {
			continue
		}
		current := true
		for _, r := range cl.Replicas {
			current = current && r.Current && !r.Offline
		}
		for i, n := range c.Nodes {
			if current && n.Name == cl.Leader {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("the journal did not settle on three current members in two minutes")
}

func rounded(ds []time.Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = fmt.Sprintf("%.2fs", d.Seconds())
	}
	return out
}
