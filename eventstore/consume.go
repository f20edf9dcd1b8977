package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	cc     jetstream.ConsumeContext
	cancel context.CancelFunc
}

// Stop ends the subscription and waits for the handler to return.
func (s *Subscription) Stop() {
	s.cancel()
	s.cc.Stop()
	<-s.cc.Closed()
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
}

// DefaultEventRetry paces a failing event handler's retries.
func DefaultEventRetry() retry.Policy {
	return retry.Policy{First: 100 * time.Millisecond, Max: 5 * time.Second}
}

// Consume runs a durable consumer. Its position lives in JetStream, so a
// restart resumes where it stopped. Fresh reports that the consumer did not
// exist and starts from the first event: a view built by it must start empty.
func (s *Store) Consume(ctx context.Context, cfg ConsumeConfig, h Handler) (sub *Subscription, fresh bool, err error) {
	exists, err := s.ConsumerExists(ctx, cfg.Durable)
	if err != nil {
		return nil, false, err
	}
	fresh = !exists
	cons, err := s.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		FilterSubject: cfg.Filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       time.Minute,
		MaxAckPending: 1024,
	})
	if err != nil {
		return nil, false, fmt.Errorf("create consumer %s: %w", cfg.Durable, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	runCtx, cancel := context.WithCancel(ctx)
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		handleInOrder(runCtx, log.With("consumer", cfg.Durable), cfg.Retry.Or(DefaultEventRetry()), msg, h)
	})
	if err != nil {
		cancel()
		return nil, false, fmt.Errorf("consume %s: %w", cfg.Durable, err)
	}
	return &Subscription{cc: cc, cancel: cancel}, fresh, nil
}

// handleInOrder retries a message until its handler succeeds, so that a
// later message of the same aggregate is never handled before it.
func handleInOrder(ctx context.Context, log *slog.Logger, policy retry.Policy, msg jetstream.Msg, h Handler) {
	meta, err := msg.Metadata()
	if err != nil {
		log.Error("message without metadata", "err", err)
		return
	}
	seq := meta.Sequence.Stream
	for attempt := 1; ; attempt++ {
		records, err := decodeBatch(seq, msg.Data())
		if err == nil {
			if err = h(ctx, msg.Subject(), records); err == nil {
				_ = msg.Ack()
				return
			}
		}
		if ctx.Err() != nil {
			return // not acked: redelivered after a restart
		}
		log.Error("event handler failed; retrying", "subject", msg.Subject(), "seq", seq, "attempt", attempt, "err", err)
		_ = msg.InProgress()
		if policy.Wait(ctx, attempt) != nil {
			return
		}
	}
}

// ConsumerExists reports whether a durable consumer exists. A projection
// asks before it starts: a missing consumer means its view starts empty.
func (s *Store) ConsumerExists(ctx context.Context, name string) (bool, error) {
	_, err := s.stream.Consumer(ctx, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("consumer %s: %w", name, err)
	}
	return true, nil
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
