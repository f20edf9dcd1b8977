package eventstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
)

// The event log meets its contract however zdmd reaches JetStream: in
// process (the embedded server) and over TCP (as an external NATS).
func TestTheEventLogMeetsTheContract(t *testing.T) {
	t.Run("in process", func(t *testing.T) {
		estest.EventLog(t, func(t *testing.T) estest.Log { return estest.NewStore(t) })
	})
	t.Run("over TCP", func(t *testing.T) {
		estest.EventLog(t, func(t *testing.T) estest.Log {
			e, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.Close)
			return estest.StoreAt(t, e.ClientURL())
		})
	})
}

func TestDurableConsumerResumesAndRebuilds(t *testing.T) {
	ctx := context.Background()
	st := estest.NewStore(t)
	subj := domain.MigrationSubject + "m4"
	var last uint64
	for i := range 5 {
		var err error
		if last, err = st.Append(ctx, subj, last, estest.Batch("", domain.LagSampled{LagSeconds: float64(i)})); err != nil {
			t.Fatal(err)
		}
	}
	seen := make(lagReader, 100)
	h := seen.handle
	cfg := eventstore.ConsumeConfig{Durable: "test-view", Filter: domain.MigrationSubject + ">"}
	sub, fresh, err := st.Consume(ctx, cfg, h)
	if err != nil || !fresh {
		t.Fatalf("first consume: fresh=%v err=%v", fresh, err)
	}
	expect := func(want ...float64) { t.Helper(); seen.expect(t, want...) }
	expect(0, 1, 2, 3, 4)
	sub.Stop()
	if _, err := st.Append(ctx, subj, last, estest.Batch("", domain.LagSampled{LagSeconds: 5})); err != nil {
		t.Fatal(err)
	}
	// A restart resumes after the last acknowledged event.
	sub, fresh, err = st.Consume(ctx, cfg, h)
	if err != nil || fresh {
		t.Fatalf("resume: fresh=%v err=%v", fresh, err)
	}
	expect(5)
	sub.Stop()
	// Deleting the consumer starts it over from the first event.
	if err := st.DeleteConsumer(ctx, cfg.Durable); err != nil {
		t.Fatal(err)
	}
	sub, fresh, err = st.Consume(ctx, cfg, h)
	if err != nil || !fresh {
		t.Fatalf("rebuild: fresh=%v err=%v", fresh, err)
	}
	defer sub.Stop()
	expect(0, 1, 2, 3, 4, 5)
}

// A subscription whose delivery stopped while messages wait for it
// subscribes again by itself, and resumes from the first of them.
func TestAStalledSubscriptionSubscribesAgain(t *testing.T) {
	ctx := context.Background()
	st := estest.NewStore(t)
	subj := domain.MigrationSubject + "m6"
	seen, last := stalledAfterOne(t, st, subj, "stalls")
	var err error
	for i := 2; i <= 3; i++ {
		if last, err = st.Append(ctx, subj, last, estest.Batch("", domain.LagSampled{LagSeconds: float64(i)})); err != nil {
			t.Fatal(err)
		}
	}
	for want := 2.0; want <= 3; want++ {
		select {
		case got := <-seen:
			if got != want {
				t.Fatalf("got %v, want %v", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %v never reached the stalled subscription", want)
		}
	}
}

// Messages delivered to a pull that is gone (a stream leader that changed,
// a connection that broke) are acknowledged by no one, and JetStream hands
// them again only after the consumer's AckWait, a minute; a new pull gets
// the messages after them first. The watch reads again from the first
// unacknowledged message, in order, well before that.
func TestMessagesHandedToAPullThatIsGoneReachTheHandlerInOrder(t *testing.T) {
	ctx := context.Background()
	srv := estest.Start(t)
	st := srv.Store(t)
	subj := domain.MigrationSubject + "m7"
	seen, last := stalledAfterOne(t, st, subj, "lost-pull")
	var err error
	if last, err = st.Append(ctx, subj, last, estest.Batch("", domain.LagSampled{LagSeconds: 2})); err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(srv.Conn(t))
	cons, err := js.Consumer(ctx, eventstore.StreamName, "lost-pull")
	if err != nil {
		t.Fatal(err)
	}
	// The pull that takes message 2 and is never heard of again.
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	taken := 0
	for range batch.Messages() {
		taken++
	}
	if taken != 1 {
		t.Fatalf("the lost pull took %d messages, want 1: the test shows nothing", taken)
	}
	if _, err := st.Append(ctx, subj, last, estest.Batch("", domain.LagSampled{LagSeconds: 3})); err != nil {
		t.Fatal(err)
	}
	seen.expect(t, 2, 3)
}

func TestHandlerErrorRetriesSameMessageFirst(t *testing.T) {
	ctx := context.Background()
	st := estest.NewStore(t)
	subj := domain.MigrationSubject + "m5"
	s1, _ := st.Append(ctx, subj, 0, estest.Batch("", domain.LagSampled{LagSeconds: 1}))
	if _, err := st.Append(ctx, subj, s1, estest.Batch("", domain.LagSampled{LagSeconds: 2})); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []float64
	failed := false
	done := make(chan struct{})
	sub, _, err := st.Consume(ctx, eventstore.ConsumeConfig{Durable: "flaky", Filter: subj}, func(_ context.Context, _ string, recs []domain.Record) error {
		mu.Lock()
		defer mu.Unlock()
		lag := recs[0].Event.(domain.LagSampled).LagSeconds
		if lag == 1 && !failed {
			failed = true
			return errors.New("transient")
		}
		order = append(order, lag)
		if len(order) == 2 {
			close(done)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
	}
	if order[0] != 1 || order[1] != 2 {
		t.Fatalf("order %v", order)
	}
}

// Every zdmd opens the store when it starts: one that finds the stream as
// it would make it must leave it alone, or each start proposes an update
// that the others wait for (and nats-server races it against consumers
// being added).
func TestOpeningTheStoreAgainDoesNotUpdateItsStream(t *testing.T) {
	ctx := context.Background()
	e, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	nc, err := nats.Connect(e.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := eventstore.Open(ctx, nc); err != nil {
		t.Fatal(err)
	}
	updates, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := eventstore.Open(ctx, nc); err != nil {
			t.Fatal(err)
		}
	}
	if msg, err := updates.NextMsg(500 * time.Millisecond); err == nil {
		t.Fatalf("opening the store again updated %s", msg.Subject)
	}
}

// lagReader hands the lag samples a consumer is given to expect, in order.
type lagReader chan float64

func (r lagReader) handle(_ context.Context, _ string, recs []domain.Record) error {
	for _, rec := range recs {
		r <- rec.Event.(domain.LagSampled).LagSeconds
	}
	return nil
}

// expect fails unless want come next, each within 5 s.
func (r lagReader) expect(t *testing.T, want ...float64) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-r:
			if got != w {
				t.Fatalf("got %v, want %v", got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %v within 5s", w)
		}
	}
}

// stalledAfterOne consumes subj with a durable that checks for stalls
// every 50 ms, appends one event and sees it handled, then stops the
// delivery behind the subscription's back, as the stall its watch guards
// against does. It returns what the handler sees and the subject's last
// sequence.
func stalledAfterOne(t *testing.T, st *eventstore.Store, subj, durable string) (lagReader, uint64) {
	t.Helper()
	ctx := context.Background()
	seen := make(lagReader, 100)
	sub, _, err := st.Consume(ctx, eventstore.ConsumeConfig{Durable: durable, Filter: subj, StallCheck: 50 * time.Millisecond}, seen.handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Stop)
	last, err := st.Append(ctx, subj, 0, estest.Batch("", domain.LagSampled{LagSeconds: 1}))
	if err != nil {
		t.Fatal(err)
	}
	seen.expect(t, 1)
	sub.StopDeliveryForTest()
	return seen, last
}
