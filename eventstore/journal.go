package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JournalStream holds the captured writes of every migration.
const JournalStream = "ZDM_JOURNAL"

// Journal is the capture journal on JetStream: one subject per migration
// and collection, appended by the proxy and read by the applier.
type Journal struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	parts  partLocks
}

// OpenJournal creates or updates the journal stream, on the store's
// connection.
func (s *Store) OpenJournal(ctx context.Context) (*Journal, error) {
	return openJournal(ctx, s.js.Conn(), s.replicas)
}

// OpenJournalOn opens the journal on a connection of its own. Every
// captured write appends its whole request (tens of KiB for a batch of
// vectors): on one connection with the event store's small requests,
// those queue behind the appends, and the server reads both from a single
// client.
func (s *Store) OpenJournalOn(ctx context.Context, nc *nats.Conn) (*Journal, error) {
	return openJournal(ctx, nc, s.replicas)
}

// openJournal opens the journal with a JetStream handle of its own: a
// read without a deadline may fetch an entry of 32 MB, which the server
// sends encoded, and the client's default of 5 s is short for that on a
// busy host.
func openJournal(ctx context.Context, nc *nats.Conn, replicas int) (*Journal, error) {
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(readTimeout))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	var st jetstream.Stream
	err = create(ctx, func(ctx context.Context) (err error) {
		st, err = ensureStream(ctx, js, jetstream.StreamConfig{
			Name:         JournalStream,
			Description:  "writes captured by the zdm proxy, per migration and collection",
			Subjects:     []string{journalPrefix + ">", partsPrefix + ">"},
			Storage:      jetstream.FileStorage,
			Retention:    jetstream.LimitsPolicy,
			Discard:      jetstream.DiscardNew,
			Replicas:     replicas,
			MaxConsumers: maxConsumers,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s (%d replicas): %w", JournalStream, replicas, err)
	}
	return &Journal{js: js, stream: st}, nil
}

// MaxEntry is the largest entry the journal takes (see parts.go).
func (j *Journal) MaxEntry() int64 { return MaxEntry }

// partSize is the most of an entry one message holds: the NATS server's
// max_payload, at most what JetStream stores in one message, less room
// for the subject and the headers an append sends. A server whose
// max_payload leaves no room refuses the parts rather than taking
// millions of them.
func (j *Journal) partSize() int64 { return max(min(j.js.Conn().MaxPayload(), MaxMessage)-1024, 4096) }

// readTimeout bounds a journal call whose caller sets no deadline.
const readTimeout = 30 * time.Second

// MaxMessage is the largest message JetStream's file store keeps (its
// record limit), and the max_payload the shipped nats.conf sets: a server
// whose max_payload is larger refuses such a message with "message too
// large" after taking it.
const MaxMessage = 32 << 20

// Append stores one entry and returns its sequence once it is durable.
// An entry with an id is stored once however often it is appended within
// the stream's duplicate window (two minutes): an append whose
// acknowledgement was lost may be tried again. An entry larger than a
// message is stored in parts (parts.go).
func (j *Journal) Append(ctx context.Context, subject string, data []byte, id string) (uint64, error) {
	if int64(len(data)) > MaxEntry {
		return 0, fmt.Errorf("journal %s: an entry of %d bytes, more than the %d the journal takes", subject, len(data), MaxEntry)
	}
	if int64(len(data)) > j.partSize() {
		return j.appendParts(ctx, subject, data, id)
	}
	defer j.parts.shared(subject)()
	return j.publish(ctx, subject, data, id, nil)
}

// publish stores one message, with header if not nil.
func (j *Journal) publish(ctx context.Context, subject string, data []byte, id string, header nats.Header) (uint64, error) {
	opts := []jetstream.PublishOpt{jetstream.WithExpectStream(JournalStream)}
	if id != "" {
		opts = append(opts, jetstream.WithMsgID(id))
	}
	ack, err := j.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data, Header: header}, opts...)
	if err != nil {
		return 0, fmt.Errorf("journal %s: %w", subject, unavailable(ctx, j.js.Conn(), err))
	}
	return ack.Sequence, nil
}

// Subjects returns each subject under filter with its message count.
func (j *Journal) Subjects(ctx context.Context, filter string) (map[string]uint64, error) {
	info, err := leaderInfo(ctx, j.js.Conn(), j.stream, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("journal subjects %s: %w", filter, err)
	}
	return info.State.Subjects, nil
}

// LastSeq is the stream sequence of the newest entry under filter (0 if
// none). One request, wildcards and all: the switch takes its fence while
// writes are held, and a request per collection written would add a
// second to the pause at a thousand.
func (j *Journal) LastSeq(ctx context.Context, filter string) (uint64, error) {
	m, err := j.stream.GetLastMsgForSubject(ctx, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("last entry of %s: %w", filter, err)
	}
	return m.Sequence, nil
}

// Next returns the first entry of subject at or after seq.
func (j *Journal) Next(ctx context.Context, subject string, seq uint64) (uint64, []byte, bool, error) {
	m, err := j.next(ctx, subject, seq)
	if m == nil || err != nil {
		return 0, nil, false, err
	}
	data, err := j.joined(ctx, subject, m.Sequence, m.Header, m.Data)
	if err != nil {
		return 0, nil, false, err
	}
	return m.Sequence, data, true, nil
}

// next is the own message of the first entry of subject at or after seq
// (nil: none).
func (j *Journal) next(ctx context.Context, subject string, seq uint64) (*jetstream.RawStreamMsg, error) {
	m, err := j.stream.GetMsg(ctx, max(seq, 1), jetstream.WithGetMsgSubject(subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	return m, err
}

// Follow reads subject from sequence `from` on, in order, calling fn with
// each entry and how many are pending after it, until ctx ends or fn fails.
func (j *Journal) Follow(ctx context.Context, subject string, from uint64, fn func(seq uint64, data []byte, pending uint64) error) error {
	return follow(ctx, j.js, JournalStream, subject, from, jetstream.PullMaxBytes(FollowBuffer), func(seq uint64, m jetstream.Msg, pending uint64) error {
		data, err := j.joined(ctx, subject, seq, m.Headers(), m.Data())
		if err != nil {
			return err
		}
		return fn(seq, data, pending)
	})
}

// Trim removes the entries of subject up to and including seq, and the
// parts of those that were stored in parts.
func (j *Journal) Trim(ctx context.Context, subject string, seq uint64) error {
	if err := j.stream.Purge(ctx, jetstream.WithPurgeSubject(subject), jetstream.WithPurgeSequence(seq+1)); err != nil {
		return fmt.Errorf("trim %s up to %d: %w", subject, seq, err)
	}
	return j.trimParts(ctx, subject, seq)
}

// Bytes is the size of the journal's entries, all migrations together.
func (j *Journal) Bytes(ctx context.Context) (uint64, error) {
	info, err := j.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("journal size: %w", err)
	}
	return info.State.Bytes, nil
}

// Purge deletes every entry under filter (a migration that ended), parts
// and all.
func (j *Journal) Purge(ctx context.Context, filter string) error {
	for _, f := range []string{filter, partsOf(filter)} {
		if f == "" {
			continue
		}
		if err := j.stream.Purge(ctx, jetstream.WithPurgeSubject(f)); err != nil {
			return fmt.Errorf("purge %s: %w", f, err)
		}
	}
	return nil
}
