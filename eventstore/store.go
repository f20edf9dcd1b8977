package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/retry"
)

// StreamName is the stream that holds every event of zdm.
const StreamName = "ZDM_EVENTS"

// Store appends and reads events on JetStream.
type Store struct {
	js       jetstream.JetStream
	stream   jetstream.Stream
	replicas int
}

// Open creates or updates the event stream and returns a store on it, with
// as many replicas as AutoReplicas gives.
func Open(ctx context.Context, nc *nats.Conn) (*Store, error) {
	return OpenReplicated(ctx, nc, 0)
}

// AutoReplicas is three on a JetStream cluster of three or more servers,
// one otherwise: three copies survive the loss of any one server, and a
// cluster of two could not elect a leader without both.
func AutoReplicas(nc *nats.Conn) int {
	if nc.ConnectedClusterName() != "" && len(nc.Servers()) >= 3 {
		return 3
	}
	return 1
}

// OpenReplicated is Open with every stream and bucket it creates kept on
// replicas servers (0: AutoReplicas). Existing ones are scaled to it, so a
// single server's data moves onto a cluster by restarting zdmd on it.
func OpenReplicated(ctx context.Context, nc *nats.Conn, replicas int) (*Store, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if replicas <= 0 {
		replicas = AutoReplicas(nc)
	}
	var stream jetstream.Stream
	err = create(ctx, func(ctx context.Context) (err error) {
		stream, err = ensureStream(ctx, js, jetstream.StreamConfig{
			Name:         StreamName,
			Description:  "zdm migration and cluster events, one subject per aggregate",
			Subjects:     []string{domain.SubjectRoot + ".>"},
			Storage:      jetstream.FileStorage,
			Retention:    jetstream.LimitsPolicy,
			Duplicates:   10 * time.Minute,
			Discard:      jetstream.DiscardNew,
			Replicas:     replicas,
			MaxConsumers: maxConsumers,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s (%d replicas): %w", StreamName, replicas, err)
	}
	return &Store{js: js, stream: stream, replicas: replicas}, nil
}

// createRetry paces the creation of a stream or bucket: a cluster that
// has just formed, or whose nodes start together with several zdmd, may
// take seconds to place a replicated stream.
var createRetry = retry.Policy{Attempts: 10, First: 250 * time.Millisecond, Max: 4 * time.Second}

// ensureStream creates or updates a stream, unless it is there as cfg
// asks already: several zdmd starting together would otherwise all
// propose the same update, and wait for each other.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if st, err := js.Stream(ctx, cfg.Name); err == nil {
		have := st.CachedInfo().Config
		// The server keeps "no limit" per subject as -1 where a config
		// leaves it 0: taken for a change, every zdmd that started
		// updated the stream (and nats-server 2.15 races an update
		// against a consumer being added, which go test -race saw).
		if have.Replicas == cfg.Replicas && slices.Equal(have.Subjects, cfg.Subjects) && have.MaxAge == cfg.MaxAge &&
			perSubject(have.MaxMsgsPerSubject) == perSubject(cfg.MaxMsgsPerSubject) && have.MaxConsumers == cfg.MaxConsumers {
			return st, nil
		}
	}
	return js.CreateOrUpdateStream(ctx, cfg)
}

// maxConsumers is the consumers a stream of zdm's may hold. The server's
// default is 1,000 a stream, and the applier reads each collection's
// journal with a consumer of its own: a migration whose applications
// write to more collections would leave the rest unapplied. An account
// limit an operator sets on an external NATS still applies.
const maxConsumers = 1 << 20

// perSubject is a stream's limit of messages per subject, -1 for none
// (which a config may also say with 0).
func perSubject(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

// create runs a creation until it succeeds or its tries are spent: even
// "insufficient resources" may only mean that a peer has not joined yet.
// A server that is not part of a cluster refuses more than one replica
// for good, and no retry changes that.
func create(ctx context.Context, fn func(context.Context) error) error {
	return createRetry.Do(ctx, func(int) error {
		err := fn(ctx)
		var api *jetstream.APIError
		if errors.As(err, &api) && api.ErrorCode == errReplicasNotClustered {
			return retry.Stop(fmt.Errorf("%w: this NATS server is not part of a cluster, so it keeps one replica (--nats-replicas 1, nats_replicas: 1)", err))
		}
		return err
	})
}

// errReplicasNotClustered is JetStream's "replicas > 1 not supported in
// non-clustered mode".
const errReplicasNotClustered jetstream.ErrorCode = 10074

// Replicas is how many servers keep each of the store's streams and buckets.
func (s *Store) Replicas() int { return s.replicas }

// JetStream exposes the context for the other parts that live on JetStream
// (journal, views, credentials).
func (s *Store) JetStream() jetstream.JetStream { return s.js }

type wireBatch struct {
	CommandID string         `json:"command_id,omitempty"`
	Actor     string         `json:"actor,omitempty"`
	At        time.Time      `json:"at"`
	Events    []wireEnvelope `json:"events"`
}

type wireEnvelope struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// Append writes a batch to subject if the subject's last sequence is still
// expected (0: the subject must be empty). A retried batch with the same
// CommandID is stored once: the retry gets the first try's sequence with
// domain.ErrAlreadyStored. A CommandID stored on another subject is
// domain.ErrCommandReused, and nothing is stored. It returns the batch's
// stream sequence.
func (s *Store) Append(ctx context.Context, subject string, expected uint64, b domain.Batch) (uint64, error) {
	if len(b.Events) == 0 {
		return 0, errors.New("append: empty batch")
	}
	w := wireBatch{CommandID: b.CommandID, Actor: b.Actor, At: b.At.UTC(), Events: make([]wireEnvelope, len(b.Events))}
	for i, e := range b.Events {
		data, err := json.Marshal(e)
		if err != nil {
			return 0, fmt.Errorf("encode %s: %w", e.EventType(), err)
		}
		w.Events[i] = wireEnvelope{Type: e.EventType(), Data: data}
	}
	payload, err := json.Marshal(w)
	if err != nil {
		return 0, fmt.Errorf("encode batch: %w", err)
	}
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(expected), jetstream.WithExpectStream(StreamName)}
	if b.CommandID != "" {
		opts = append(opts, jetstream.WithMsgID(b.CommandID))
	}
	ack, err := s.js.Publish(ctx, subject, payload, opts...)
	if err != nil {
		if IsConflict(err) {
			// JetStream checks the expected sequence before the message ID,
			// so a retry of a stored command lands here: answer it with the
			// sequence the first try got.
			if seq, ok, ferr := s.findCommand(ctx, subject, expected, b.CommandID); ferr == nil && ok {
				return seq, domain.ErrAlreadyStored
			}
			return 0, fmt.Errorf("append to %s after seq %d: %w", subject, expected, domain.ErrConflict)
		}
		return 0, fmt.Errorf("append to %s: %w", subject, unavailable(ctx, s.js.Conn(), err))
	}
	if ack.Duplicate {
		// Deduplication is by message ID across the whole stream: the
		// first message may belong to another aggregate.
		first, err := s.stream.GetMsg(ctx, ack.Sequence)
		if err != nil {
			return 0, fmt.Errorf("append to %s: read the first message of command %s: %w", subject, b.CommandID, err)
		}
		if first.Subject != subject {
			return 0, fmt.Errorf("append to %s: %w (command %s)", subject, domain.ErrCommandReused, b.CommandID)
		}
		return ack.Sequence, domain.ErrAlreadyStored
	}
	return ack.Sequence, nil
}

// findCommand looks for a batch of commandID stored on subject after seq.
func (s *Store) findCommand(ctx context.Context, subject string, after uint64, commandID string) (uint64, bool, error) {
	if commandID == "" {
		return 0, false, nil
	}
	last, err := s.stream.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		return 0, false, err
	}
	var found uint64
	errFound := errors.New("found")
	err = s.read(ctx, subject, after+1, last.Sequence, func(seq uint64, data []byte) error {
		var w struct {
			CommandID string `json:"command_id"`
		}
		if json.Unmarshal(data, &w) == nil && w.CommandID == commandID {
			found = seq
			return errFound
		}
		return nil
	})
	if errors.Is(err, errFound) {
		return found, true, nil
	}
	return 0, false, err
}

// IsConflict reports whether err is JetStream's wrong-last-sequence error,
// from its API error code (replicated streams use a second code).
func IsConflict(err error) bool {
	if errors.Is(err, domain.ErrConflict) {
		return true
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// decodeBatch turns one stored message into records.
func decodeBatch(seq uint64, data []byte) ([]domain.Record, error) {
	var w wireBatch
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("decode message %d: %w", seq, err)
	}
	out := make([]domain.Record, 0, len(w.Events))
	for _, env := range w.Events {
		e, err := domain.DecodeEvent(env.Type, env.Data)
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", seq, err)
		}
		out = append(out, domain.Record{Seq: seq, At: w.At, Actor: w.Actor, Event: e})
	}
	return out, nil
}
