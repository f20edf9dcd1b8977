package eventstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
)

// A zdmd killed while messages were delivered to it and not acknowledged,
// restarted under the same name, reads them again at once: JetStream
// itself hands them again only after the consumer's AckWait, a minute,
// and a restarted zdmd's views stood still that long.
func TestARestartedConsumerReadsAgainWhatADeadRunLeftUnacknowledged(t *testing.T) {
	ctx := context.Background()
	srv := estest.Start(t)
	st := srv.Store(t)
	subj := domain.MigrationSubject + "m-restart"
	var last uint64
	var err error
	for i := range 5 {
		if last, err = st.Append(ctx, subj, last, estest.Batch("", domain.LagSampled{LagSeconds: float64(i)})); err != nil {
			t.Fatal(err)
		}
	}
	cfg := eventstore.ConsumeConfig{Durable: "restart-view", Filter: domain.MigrationSubject + ">"}
	seen := make(lagReader, 100)
	h := seen.handle
	expect := func(want ...float64) { t.Helper(); seen.expect(t, want...) }
	// The dead run: killed while it handled the first message it was
	// given, it acknowledged none of those it had taken.
	got := make(chan struct{}, 1)
	dead, _, err := st.Consume(ctx, cfg, func(ctx context.Context, _ string, _ []domain.Record) error {
		select {
		case got <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the first run was given nothing")
	}
	dead.Stop()
	js, _ := jetstream.New(srv.Conn(t))
	cons, err := js.Consumer(ctx, eventstore.StreamName, cfg.Durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil || info.NumAckPending == 0 {
		t.Fatalf("the dead run left nothing unacknowledged (%v): the test shows nothing", err)
	}

	sub, fresh, err := st.Consume(ctx, cfg, h)
	if err != nil || fresh {
		t.Fatalf("restart: fresh=%v err=%v", fresh, err)
	}
	expect(0, 1, 2, 3, 4)
	sub.Stop()

	// The consumer made again from its first unacknowledged message is
	// updated on the next start like any other, and resumes.
	if _, err := st.Append(ctx, subj, last, estest.Batch("", domain.LagSampled{LagSeconds: 5})); err != nil {
		t.Fatal(err)
	}
	sub, _, err = st.Consume(ctx, cfg, h)
	if err != nil {
		t.Fatalf("the next start: %v", err)
	}
	defer sub.Stop()
	expect(5)
}
