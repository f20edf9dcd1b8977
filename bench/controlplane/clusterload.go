package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/natscluster"
)

// clusterReads is how many reads each side of clusterLoads times.
const clusterReads = 40

// clusterLoads times, on three zdm-nats nodes, the read a command makes
// when its instance lacks an aggregate's newest events (another instance
// appended them): three events after a 200-event history. The baseline
// reads the same events through an ordered consumer, as every load did
// before, and deletes it after.
func clusterLoads(ctx context.Context, dir string) error {
	bin, err := natscluster.Binary(ctx)
	if err != nil {
		return err
	}
	dir = filepath.Join(dir, "clusterload")
	c, err := natscluster.StartWith(ctx, bin, dir, 3)
	if err != nil {
		return err
	}
	defer c.Stop()
	defer os.RemoveAll(dir)
	nc, err := nats.Connect(c.URLs(), c.Options()...)
	if err != nil {
		return err
	}
	defer nc.Close()
	store, err := eventstore.Open(ctx, nc)
	if err != nil {
		return err
	}
	js := store.JetStream()
	subj := domain.MigrationSubject + "cluster-load"
	var last uint64
	appendN := func(n int) error {
		for i := range n {
			if last, err = store.Append(ctx, subj, last, domain.Batch{At: time.Now(), Events: []domain.Event{domain.LagSampled{LagSeconds: float64(i)}}}); err != nil {
				return err
			}
		}
		return nil
	}
	if err := appendN(200); err != nil {
		return err
	}
	consumerRead := func(after uint64, n int) error {
		cons, err := js.OrderedConsumer(ctx, eventstore.StreamName, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{subj}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: after + 1})
		if err != nil {
			return err
		}
		it, err := cons.Messages()
		if err != nil {
			return err
		}
		for range n {
			if _, err := it.Next(); err != nil {
				return err
			}
		}
		it.Stop()
		return js.DeleteConsumer(ctx, eventstore.StreamName, cons.CachedInfo().Name)
	}
	var zdm, consumer []time.Duration
	for range clusterReads {
		before := last
		if err := appendN(3); err != nil {
			return err
		}
		t0 := time.Now()
		recs, _, err := store.Load(ctx, subj, before)
		if err != nil || len(recs) != 3 {
			return fmt.Errorf("load: %d events, %v", len(recs), err)
		}
		t1 := time.Now()
		if err := consumerRead(before, 3); err != nil {
			return err
		}
		zdm, consumer = append(zdm, t1.Sub(t0)), append(consumer, time.Since(t1))
	}
	fmt.Printf("a command's read of the 3 events its instance lacks (3 zdm-nats nodes, %d reads each)\n", clusterReads)
	fmt.Printf("  zdm load (asks the stream's leader)        p50 %8.2f ms   p99 %8.2f ms\n", ms(pct(zdm, 50)), ms(pct(zdm, 99)))
	fmt.Printf("  through an ordered consumer (baseline)     p50 %8.2f ms   p99 %8.2f ms\n", ms(pct(consumer, 50)), ms(pct(consumer, 99)))
	fmt.Printf("  ratio zdm/consumer p50 %6.2f\n\n", ms(pct(zdm, 50))/ms(pct(consumer, 50)))
	return nil
}
