package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/retry"
)

// Handler receives the events of one stored message. Returning an error
// retries the same message, so handlers see messages in stream order.
type Handler func(ctx context.Context, subject string, records []domain.Record) error

// Subscription is a running durable consumer.
type Subscription struct {
	cancel context.CancelFunc
	done   chan struct{}
	cons   jetstream.Consumer
	p      *progress

	mu sync.Mutex
	cc jetstream.ConsumeContext
}

// Stop ends the subscription and waits for the handler to return, and
// for the server to have taken the acknowledgements of what it handled
// (a second at most): acknowledgements are sent without waiting, and one
// still on its way when the next run of the consumer starts has that run
// read the message again.
func (s *Subscription) Stop() {
	s.cancel()
	<-s.done
	last := s.p.last.Load()
	if last == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if info, err := s.cons.Info(ctx); err == nil && info.AckFloor.Stream >= last {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ConsumeConfig names a durable consumer and what it reads.
type ConsumeConfig struct {
	Durable string
	Filter  string
	Logger  *slog.Logger
	// Retry paces the retries of a failing handler; its Attempts are not
	// used, since a message is never skipped (default: 100 ms doubling up
	// to 5 s).
	Retry retry.Policy
	// StallCheck is how often the subscription checks that messages
	// waiting for it reach it (default 5 s); see watch.
	StallCheck time.Duration
}

// DefaultEventRetry paces a failing event handler's retries.
func DefaultEventRetry() retry.Policy {
	return retry.Policy{First: 100 * time.Millisecond, Max: 5 * time.Second}
}

// Consume runs a durable consumer. Its position lives in JetStream, so a
// restart resumes where it stopped. Fresh reports that the consumer did not
// exist and starts from the first event: a view built by it must start empty.
func (s *Store) Consume(ctx context.Context, cfg ConsumeConfig, h Handler) (sub *Subscription, fresh bool, err error) {
	info, err := s.consumerInfo(ctx, cfg.Durable)
	if err != nil {
		return nil, false, err
	}
	fresh = info == nil
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("consumer", cfg.Durable)
	want := jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		FilterSubject: cfg.Filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       time.Minute,
		MaxAckPending: 1024,
	}
	if info != nil {
		if want, err = s.restartConsumer(ctx, want, info, log); err != nil {
			return nil, false, err
		}
	}
	// Retried like the streams' creation: a zdmd restarted while the
	// cluster elects leaders after losing a node is answered 503 for a
	// few seconds, and exited on it.
	var cons jetstream.Consumer
	err = create(ctx, func(ctx context.Context) (err error) {
		cons, err = s.stream.CreateOrUpdateConsumer(ctx, want)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("create consumer %s: %w", cfg.Durable, err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	p := &progress{}
	sub = &Subscription{cancel: cancel, done: make(chan struct{}), cons: cons, p: p}
	policy := cfg.Retry.Or(DefaultEventRetry())
	cc, err := sub.start(runCtx, log, policy, h)
	if err != nil {
		cancel()
		return nil, false, fmt.Errorf("consume %s: %w", cfg.Durable, err)
	}
	sub.cc = cc
	every := cfg.StallCheck
	if every <= 0 {
		every = 5 * time.Second
	}
	remake := func(ctx context.Context, info *jetstream.ConsumerInfo) (jetstream.Consumer, error) {
		from, err := s.fromAckFloor(ctx, want, info)
		if err != nil {
			return nil, err
		}
		var cons jetstream.Consumer
		err = create(ctx, func(ctx context.Context) (err error) {
			cons, err = s.stream.CreateOrUpdateConsumer(ctx, from)
			return err
		})
		return cons, err
	}
	go sub.watch(runCtx, func() (jetstream.ConsumeContext, error) {
		return sub.start(runCtx, log, policy, h)
	}, remake, every, log)
	return sub, fresh, nil
}

// start delivers the consumer's messages to h, one at a time.
func (s *Subscription) start(ctx context.Context, log *slog.Logger, policy retry.Policy, h Handler) (jetstream.ConsumeContext, error) {
	s.mu.Lock()
	cons := s.cons
	s.mu.Unlock()
	return cons.Consume(func(msg jetstream.Msg) {
		s.p.busy.Store(true)
		s.p.handled(handleInOrder(ctx, log, policy, msg, h))
	})
}

// progress is what a subscription's handler did last.
type progress struct {
	busy  atomic.Bool   // a message is in the handler (which may be retrying it)
	count atomic.Int64  // messages handled
	last  atomic.Uint64 // stream sequence of the last message acknowledged
}

// handled counts a message out of the handler, acknowledged at stream
// sequence acked (0: not acknowledged).
func (p *progress) handled(acked uint64) {
	p.count.Add(1)
	if acked > 0 {
		p.last.Store(acked)
	}
	p.busy.Store(false)
}

// watch subscribes again when nothing has reached the handler for two
// checks in a row while the server says messages wait for it. A zdmd
// restarted after a SIGKILL once served a view that its consumer,
// subscribed and pulling, never advanced again in five minutes of a chaos
// test, while the other instances' consumers of the same stream went on.
// Messages the server counts as delivered and not acknowledged, with no
// handler at work, went to a pull that is gone (a leader change of the
// stream, a connection that broke): JetStream hands them again only after
// AckWait, a minute, and a new pull would be handed the messages after
// them first. So then the consumer is made again from its first
// unacknowledged message, as at a restart; handlers skip what they have
// seen. The server's view of the consumer is logged, for the post-mortem.
func (s *Subscription) watch(ctx context.Context, start func() (jetstream.ConsumeContext, error),
	remake func(context.Context, *jetstream.ConsumerInfo) (jetstream.Consumer, error), every time.Duration, log *slog.Logger) {
	defer close(s.done)
	defer s.swap(nil)
	tick := time.NewTicker(every)
	defer tick.Stop()
	p := s.p
	seen, suspect := p.count.Load(), false
	// unmade is the server's view of a consumer this watch deleted and
	// could not make again: until it has, the server knows no consumer to
	// ask about, and the next checks try again from that view.
	var unmade *jetstream.ConsumerInfo
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if unmade != nil {
			unmade = s.readAgain(ctx, unmade, start, remake, log)
			continue
		}
		n := p.count.Load()
		if n != seen || p.busy.Load() {
			seen, suspect = n, false
			continue
		}
		s.mu.Lock()
		cons := s.cons
		s.mu.Unlock()
		info, err := cons.Info(ctx)
		if err != nil || info.NumPending == 0 && info.NumAckPending == 0 {
			suspect = false // nothing waits for it, or the server cannot say
			continue
		}
		if !suspect {
			suspect = true // messages wait: they have one more check to arrive
			continue
		}
		suspect = false
		leader := ""
		if info.Cluster != nil {
			leader = info.Cluster.Leader
		}
		attrs := []any{"pending", info.NumPending, "ack_pending", info.NumAckPending, "waiting_pulls", info.NumWaiting,
			"delivered", info.Delivered.Stream, "ack_floor", info.AckFloor.Stream, "leader", leader}
		s.swap(nil)
		if info.NumAckPending > 0 {
			log.Warn("messages were delivered and none reached the handler; reading again from the first unacknowledged", attrs...)
			unmade = s.readAgain(ctx, info, start, remake, log)
			continue
		}
		log.Warn("messages wait for this consumer and none reached it; subscribing again", attrs...)
		if cc, err := start(); err != nil {
			log.Warn("subscribing again failed; trying at the next check", "err", err)
		} else {
			s.swap(cc)
		}
	}
}

// readAgain makes the consumer again from info's first unacknowledged
// message and delivers from it. It returns info when the consumer could
// not be made again (the next check tries again), else nil.
func (s *Subscription) readAgain(ctx context.Context, info *jetstream.ConsumerInfo, start func() (jetstream.ConsumeContext, error),
	remake func(context.Context, *jetstream.ConsumerInfo) (jetstream.Consumer, error), log *slog.Logger) *jetstream.ConsumerInfo {
	fresh, err := remake(ctx, info)
	if err != nil {
		log.Warn("making the consumer again failed; trying at the next check", "err", err)
		return info
	}
	s.mu.Lock()
	s.cons = fresh
	s.mu.Unlock()
	cc, err := start()
	if err != nil {
		// The consumer exists again: the next checks see what waits.
		log.Warn("subscribing again failed; trying at the next check", "err", err)
		return nil
	}
	s.swap(cc)
	return nil
}

// swap stops the current delivery, if any, and puts cc in its place.
func (s *Subscription) swap(cc jetstream.ConsumeContext) {
	s.mu.Lock()
	old := s.cc
	s.cc = cc
	s.mu.Unlock()
	if old != nil {
		old.Stop()
		<-old.Closed()
	}
}

// handleInOrder retries a message until its handler succeeds, so that a
// later message of the same aggregate is never handled before it. It
// returns the stream sequence of the message it acknowledged (0: none).
func handleInOrder(ctx context.Context, log *slog.Logger, policy retry.Policy, msg jetstream.Msg, h Handler) uint64 {
	meta, err := msg.Metadata()
	if err != nil {
		log.Error("message without metadata", "err", err)
		return 0
	}
	seq := meta.Sequence.Stream
	for attempt := 1; ; attempt++ {
		records, err := decodeBatch(seq, msg.Data())
		if err == nil {
			if err = h(ctx, msg.Subject(), records); err == nil {
				if msg.Ack() != nil {
					return 0
				}
				return seq
			}
		}
		if ctx.Err() != nil {
			return 0 // not acked: redelivered after a restart
		}
		log.Error("event handler failed; retrying", "subject", msg.Subject(), "seq", seq, "attempt", attempt, "err", err)
		_ = msg.InProgress()
		if policy.Wait(ctx, attempt) != nil {
			return 0
		}
	}
}

// restartConsumer readies an existing consumer for this process, which
// has handled nothing of it yet: messages delivered and not acknowledged,
// and pulls waiting, are an earlier run's (a zdmd killed, restarted under
// the same instance name). JetStream hands such messages again only after
// AckWait, a minute, and gives new ones to the dead run's pulls until they
// expire, so a restarted zdmd's views stood still for up to a minute. The
// consumer is made again from its first unacknowledged message; handlers
// skip what they have already seen. It returns want with the existing
// consumer's start, which an update may not change.
func (s *Store) restartConsumer(ctx context.Context, want jetstream.ConsumerConfig, info *jetstream.ConsumerInfo, log *slog.Logger) (jetstream.ConsumerConfig, error) {
	if info.NumAckPending == 0 && info.NumWaiting == 0 {
		want.DeliverPolicy, want.OptStartSeq = info.Config.DeliverPolicy, info.Config.OptStartSeq
		return want, nil
	}
	want, err := s.fromAckFloor(ctx, want, info)
	if err != nil {
		return want, err
	}
	log.Info("an earlier run of this zdmd left messages delivered and not acknowledged; reading again from the first of them",
		"from", want.OptStartSeq, "ack_pending", info.NumAckPending, "waiting_pulls", info.NumWaiting)
	return want, nil
}

// fromAckFloor deletes the consumer and returns want set to start again
// at its first unacknowledged message.
func (s *Store) fromAckFloor(ctx context.Context, want jetstream.ConsumerConfig, info *jetstream.ConsumerInfo) (jetstream.ConsumerConfig, error) {
	want.DeliverPolicy, want.OptStartSeq = jetstream.DeliverByStartSequencePolicy, info.AckFloor.Stream+1
	err := create(ctx, func(ctx context.Context) error {
		err := s.stream.DeleteConsumer(ctx, want.Durable)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return want, fmt.Errorf("consumer %s: make it again: %w", want.Durable, err)
	}
	return want, nil
}

// ConsumerExists reports whether a durable consumer exists. A projection
// asks before it starts: a missing consumer means its view starts empty.
// The look-up is tried as a creation is (createRetry): asked at start-up,
// it may meet the same cluster that has not placed its streams yet, and
// an error here would stop the projection.
func (s *Store) ConsumerExists(ctx context.Context, name string) (bool, error) {
	info, err := s.consumerInfo(ctx, name)
	return info != nil, err
}

// consumerInfo is a durable consumer's state as the server has it, nil
// when it does not exist.
func (s *Store) consumerInfo(ctx context.Context, name string) (*jetstream.ConsumerInfo, error) {
	var info *jetstream.ConsumerInfo
	err := createRetry.Do(ctx, func(int) error {
		c, err := s.stream.Consumer(ctx, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil
		}
		if err == nil {
			info = c.CachedInfo() // the look-up read it
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", name, err)
	}
	return info, nil
}

// DeleteConsumer removes a durable consumer, so that the next Consume with
// its name starts from the first event (a projection rebuild).
func (s *Store) DeleteConsumer(ctx context.Context, name string) error {
	err := s.stream.DeleteConsumer(ctx, name)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("delete consumer %s: %w", name, err)
	}
	return nil
}
