package eventstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Entries larger than a message. JetStream keeps at most MaxMessage bytes
// in one message, and a server's max_payload may be lower still, while
// Milvus takes a write of up to 64 MB as it ships: an application sending
// such batches must not be refused because a migration runs. An entry
// larger than a message is stored as parts: all but its first bytes on
// the subject's parts subject (zdm.parts.…, which no reader's filter
// takes), then the entry's own message with its first bytes (its head)
// and a header listing the parts' sequences. Readers join them; one that
// needs only the head, or only the sequence, reads the entry's own
// message (NextHead): polls of the applier's progress must not fetch tens
// of megabytes each.
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
	// headBytes is the most of an entry in parts that its own message
	// holds, where a message holds that much.
	headBytes = 256 << 10
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
// has parts this journal has not trimmed. Every append looks its subject
// up: a sync.Map, not one mutex for all.
type partLocks struct{ by sync.Map }

type subjectParts struct {
	rw    sync.RWMutex
	parts atomic.Bool // appended or read here
}

func (l *partLocks) of(subject string) *subjectParts {
	if s, ok := l.by.Load(subject); ok {
		return s.(*subjectParts)
	}
	s, _ := l.by.LoadOrStore(subject, &subjectParts{})
	return s.(*subjectParts)
}

// shared is held by an append of one message; the function it returns
// releases it.
func (l *partLocks) shared(subject string) func() {
	s := l.of(subject)
	s.rw.RLock()
	return s.rw.RUnlock
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
	s.parts.Store(true)
	size := int(j.partSize())
	head, rest := data[:min(headBytes, size)], data[min(headBytes, size):]
	var seqs []string
	for len(rest) > 0 {
		part := rest[:min(size, len(rest))]
		seq, err := j.publish(ctx, partsOf(subject), part, "", nil)
		if err != nil {
			return 0, fmt.Errorf("part %d of an entry of %s: %w", len(seqs)+1, subject, err)
		}
		seqs = append(seqs, strconv.FormatUint(seq, 10))
		rest = rest[len(part):]
	}
	return j.publish(ctx, subject, head, id, nats.Header{partsHeader: {strings.Join(seqs, " ")}})
}

// NextHead is Next without an entry's parts: all of an entry stored in
// one message, the first 256 KiB (at most a message) of one in parts.
func (j *Journal) NextHead(ctx context.Context, subject string, seq uint64) (uint64, []byte, bool, error) {
	m, err := j.next(ctx, subject, seq)
	if m == nil || err != nil {
		return 0, nil, false, err
	}
	return m.Sequence, m.Data, true, nil
}

// joined is the entry seq of subject whose own message holds head under
// header: head itself, or head and its parts.
func (j *Journal) joined(ctx context.Context, subject string, seq uint64, header nats.Header, head []byte) ([]byte, error) {
	list := header.Get(partsHeader)
	if list == "" {
		return head, nil
	}
	j.parts.of(subject).parts.Store(true)
	data := slices.Clone(head)
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
	return data, nil
}

// trimParts removes the parts of subject's entries up to seq, where it
// had any: a purge is a call through the stream's Raft log, and the
// applier trims every subject it applies every few seconds.
func (j *Journal) trimParts(ctx context.Context, subject string, seq uint64) error {
	if !j.parts.of(subject).parts.Load() {
		return nil
	}
	parts := partsOf(subject)
	if err := j.stream.Purge(ctx, jetstream.WithPurgeSubject(parts), jetstream.WithPurgeSequence(seq+1)); err != nil {
		return fmt.Errorf("trim %s up to %d: %w", parts, seq, err)
	}
	return nil
}
