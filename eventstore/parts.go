package eventstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Entries larger than a message. JetStream keeps at most MaxMessage bytes
// in one message, and a server's max_payload may be lower still, while
// Milvus takes a write of up to 64 MB as it ships: an application sending
// such batches must not be refused because a migration runs. An entry
// larger than a message is stored as parts: all but its last bytes on
// the subject's parts subject (zdm.parts.…, which no reader's filter
// takes), then the entry's own message with its last bytes and a header
// listing the parts' sequences. Readers join them.
//
// Trim removes an entry's parts with it by purging the parts subject up
// to the entry's sequence. That is exact only if no entry of the subject
// lands between an entry's first part and the entry itself, for the
// applier trims at the entries it applied: this journal appends an entry
// in parts alone on its subject, and only the instance that drives a
// migration appends to its subjects.

const (
	journalPrefix = "zdm.journal."
	partsPrefix   = "zdm.parts."
	// partsHeader, on an entry stored in parts, lists the sequences of
	// its parts in order, separated by spaces.
	partsHeader = "Zdm-Parts"
	// MaxEntry is the largest entry the journal takes. It only bounds
	// memory: zdm's proxy takes calls of up to 256 MB, their journal
	// entries a little more.
	MaxEntry = 512 << 20
)

// partsOf is the parts subject of a journal subject or filter ("" for one
// outside the journal).
func partsOf(subject string) string {
	rest, ok := strings.CutPrefix(subject, journalPrefix)
	if !ok {
		return ""
	}
	return partsPrefix + rest
}

// partLocks keeps, per subject, appends of single messages from landing
// between the parts of an entry and the entry, and whether the subject
// has parts this journal has not trimmed.
type partLocks struct {
	mu sync.Mutex
	by map[string]*subjectParts
}

type subjectParts struct {
	rw    sync.RWMutex
	mu    sync.Mutex
	parts bool
}

func (l *partLocks) of(subject string) *subjectParts {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.by == nil {
		l.by = map[string]*subjectParts{}
	}
	s := l.by[subject]
	if s == nil {
		s = &subjectParts{}
		l.by[subject] = s
	}
	return s
}

// shared is held by an append of one message; the function it returns
// releases it.
func (l *partLocks) shared(subject string) func() {
	s := l.of(subject)
	s.rw.RLock()
	return s.rw.RUnlock
}

// saw records that subject has parts.
func (l *partLocks) saw(subject string) {
	s := l.of(subject)
	s.mu.Lock()
	s.parts = true
	s.mu.Unlock()
}

// has reports whether subject had parts (appended or read here).
func (l *partLocks) has(subject string) bool {
	s := l.of(subject)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parts
}

// appendParts stores data as parts and an entry naming them, alone on
// subject. The parts carry no id: a try that lands them again after one
// whose entry failed leaves the first try's parts behind, which the trim
// past them removes, and an entry whose try landed unanswered keeps the
// parts it names.
func (j *Journal) appendParts(ctx context.Context, subject string, data []byte, id string) (uint64, error) {
	s := j.parts.of(subject)
	s.rw.Lock()
	defer s.rw.Unlock()
	j.parts.saw(subject)
	size := int(j.partSize())
	var seqs []string
	for len(data) > size {
		seq, err := j.publish(ctx, partsOf(subject), data[:size], "", nil)
		if err != nil {
			return 0, fmt.Errorf("part %d of an entry of %s: %w", len(seqs)+1, subject, err)
		}
		seqs = append(seqs, strconv.FormatUint(seq, 10))
		data = data[size:]
	}
	return j.publish(ctx, subject, data, id, nats.Header{partsHeader: {strings.Join(seqs, " ")}})
}

// joined is the entry seq of subject whose own message holds last under
// header: last itself, or its parts and last.
func (j *Journal) joined(ctx context.Context, subject string, seq uint64, header nats.Header, last []byte) ([]byte, error) {
	list := header.Get(partsHeader)
	if list == "" {
		return last, nil
	}
	j.parts.saw(subject)
	var data []byte
	for _, f := range strings.Fields(list) {
		ps, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("journal entry %d of %s names a part %q: %w", seq, subject, f, err)
		}
		m, err := j.stream.GetMsg(ctx, ps)
		if err != nil {
			return nil, fmt.Errorf("part %d of journal entry %d of %s: %w", ps, seq, subject, err)
		}
		if m.Subject != partsOf(subject) {
			return nil, fmt.Errorf("part %d of journal entry %d of %s is on %s, not among its parts", ps, seq, subject, m.Subject)
		}
		data = append(data, m.Data...)
	}
	return append(data, last...), nil
}

// trimParts removes the parts of subject's entries up to seq, where it
// had any: a purge is a call through the stream's Raft log, and the
// applier trims every subject it applies every few seconds.
func (j *Journal) trimParts(ctx context.Context, subject string, seq uint64) error {
	if !j.parts.has(subject) {
		return nil
	}
	parts := partsOf(subject)
	if err := j.stream.Purge(ctx, jetstream.WithPurgeSubject(parts), jetstream.WithPurgeSequence(seq+1)); err != nil {
		return fmt.Errorf("trim %s up to %d: %w", parts, seq, err)
	}
	return nil
}
