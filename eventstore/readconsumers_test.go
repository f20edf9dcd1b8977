package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
)

// Every command loads its aggregate with a read of its own. A stream holds
// at most 1,000 consumers (the server's default), so reads that left
// theirs behind would have the store refuse every read after a burst of
// commands: an API answering 500s to any call. A short read takes no
// consumer at all, a long one deletes its own.
func TestReadsLeaveNoConsumerBehind(t *testing.T) {
	// More short reads than the limit; long reads each take a consumer
	// for a moment, and 200 of them in a second or two would leave as
	// many behind for the count at the end, well within any consumer's
	// inactivity threshold (1,200 took two minutes under the race
	// detector on a busy machine).
	t.Run("in process", func(t *testing.T) { loadsLeaveNoConsumer(t, estest.NewStore(t), 1200, 200) })
	t.Run("on a three-node cluster", func(t *testing.T) {
		st, err := eventstore.Open(context.Background(), clusterConn(t, startCluster(t)))
		if err != nil {
			t.Fatal(err)
		}
		// A consumer's placement and removal take the cluster's meta
		// leader a few hundred milliseconds: a few long reads.
		loadsLeaveNoConsumer(t, st, 1200, 10)
	})
}

func loadsLeaveNoConsumer(t *testing.T, st *eventstore.Store, shortLoads, longLoads int) {
	ctx := context.Background()
	// Each append carries a command ID, as every command's does. Under
	// CI's load, on a cluster that had just elected its leaders, one
	// append of a hundred without one was refused as "a concurrent
	// change" though nothing else wrote: without an ID the store cannot
	// tell a message of its own, stored once more or stored before its
	// answer was lost, from another writer's. With the ID it can.
	appendN := func(subj string, n int) {
		var last uint64
		for i := range n {
			var err error
			last, err = st.Append(ctx, subj, last, estest.Batch(fmt.Sprintf("%s-%d", subj, i), domain.LagSampled{LagSeconds: float64(i)}))
			if err != nil && !errors.Is(err, domain.ErrAlreadyStored) {
				t.Fatal(err)
			}
		}
	}
	short, long := domain.MigrationSubject+"short", domain.MigrationSubject+"long"
	appendN(short, 2)
	appendN(long, 100) // more than a read asks for one by one
	loads := func(subj string, n, want int) {
		began := time.Now()
		for i := range n {
			recs, _, err := st.Load(ctx, subj, 0)
			if err != nil {
				t.Fatalf("load %d of %s: %v", i, subj, err)
			}
			if len(recs) != want {
				t.Fatalf("load %d of %s read %d events, want %d", i, subj, len(recs), want)
			}
			for j, r := range recs {
				if got := r.Event.(domain.LagSampled).LagSeconds; got != float64(j) {
					t.Fatalf("load %d of %s: event %d is sample %v", i, subj, j, got)
				}
			}
		}
		t.Logf("%d loads of %d events in %s", n, want, time.Since(began))
	}
	loads(short, shortLoads, 2)
	loads(long, longLoads, 100)
	stream, err := st.JetStream().Stream(ctx, eventstore.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Consumers; n != 0 {
		t.Fatalf("%d consumers left on the stream after %d loads", n, shortLoads+longLoads)
	}
}
