package capture

import (
	"encoding/json"
	"maps"
	"sync"
	"time"
)

// The outcomes of a subject's writes wait in its outbox for the next
// write's entry on the subject, which carries them, or for outcomeLinger,
// after which they go together in an OpOutcome entry. Under a steady
// stream of writes nearly every outcome rides along, and a write costs the
// journal one message instead of two: most of what a small message costs
// NATS is that it is one, the more so with three replicas, each of which
// writes every message to its log and its stream. A hold for the switch
// sends what waits at once (flushOutboxes), and the outcomes of the writes
// it waits for as they come: the switch waits for them, and no write comes
// for them to ride with.

// outcomeLinger bounds how long an outcome waits for a write to ride
// with. It delays only an applier in another zdmd (this process's reads
// its own outcomes from memory), by far less than the lag's own window.
const outcomeLinger = 10 * time.Millisecond

// carryBytes bounds the outcomes one entry carries (an insert's outcome
// holds the keys the source gave it: 21 bytes each at most).
const carryBytes = 64 << 10

// queuedOutcome is a write's outcome, encoded, waiting for its entry.
type queuedOutcome struct {
	k   *call
	raw json.RawMessage
}

// outbox holds the outcomes of one subject's writes not yet journaled.
type outbox struct {
	mu     sync.Mutex
	queued []queuedOutcome
	// flushing: a flush is due or under way, and takes what is queued.
	flushing bool
}

// outbox returns the subject's outbox.
func (c *Capture) outbox(subject string) *outbox {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.outboxes[subject]
	if b == nil {
		b = &outbox{}
		c.outboxes[subject] = b
	}
	return b
}

// take removes from the front of the queue the outcomes that fit in room
// bytes.
func (b *outbox) take(room int) []queuedOutcome {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.takeLocked(room)
}

// next takes the outcomes of the next entry of their own (one at least,
// however large); with none waiting, it ends the flush.
func (b *outbox) next() []queuedOutcome {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queued) == 0 {
		b.flushing = false
		return nil
	}
	return b.takeLocked(max(carryBytes, len(b.queued[0].raw)))
}

func (b *outbox) takeLocked(room int) []queuedOutcome {
	n, used := 0, 0
	for n < len(b.queued) && used+len(b.queued[n].raw) <= room {
		used += len(b.queued[n].raw)
		n++
	}
	out := b.queued[:n:n]
	b.queued = b.queued[n:]
	return out
}

// queue adds outcomes to a subject's outbox and makes sure a flush is due.
func (c *Capture) queue(subject string, b *outbox, q ...queuedOutcome) {
	if len(q) == 0 {
		return
	}
	b.mu.Lock()
	b.queued = append(b.queued, q...)
	due := !b.flushing
	b.flushing = true
	b.mu.Unlock()
	switch {
	case !due:
	case c.holding(q[0].k.a):
		go c.flush(subject, b)
	default:
		time.AfterFunc(c.linger, func() { c.flush(subject, b) })
	}
}

// flush journals what waits in an outbox, in entries of its own, until
// nothing does.
func (c *Capture) flush(subject string, b *outbox) {
	for batch := b.next(); batch != nil; batch = b.next() {
		c.journalOutcomes(subject, batch)
	}
}

// holding reports whether a's writes are held for the switch.
func (c *Capture) holding(a *armed) bool {
	c.mu.Lock()
	hold := a.hold
	c.mu.Unlock()
	select {
	case <-hold.ch:
		return false
	default:
		return true
	}
}

// flushOutboxes journals at once every outcome that waits.
func (c *Capture) flushOutboxes() {
	c.mu.Lock()
	boxes := maps.Clone(c.outboxes)
	c.mu.Unlock()
	for s, b := range boxes {
		b.mu.Lock()
		waits := len(b.queued) > 0
		b.mu.Unlock()
		if waits {
			go c.flush(s, b)
		}
	}
}

// journalOutcomes journals outcomes in an entry of their own, tried until
// it lands or the term ends.
func (c *Capture) journalOutcomes(subject string, batch []queuedOutcome) {
	first := batch[0].k
	e := Entry{Op: OpOutcome, Database: first.db, Collection: first.coll, Outcomes: rawOutcomes(batch), At: time.Now()}
	for round := 1; ; round++ {
		err := c.appendTried(c.term, c.term, subject, e, first.token+"/outcome", nil)
		if err == nil {
			c.alone.Add(uint64(len(batch)))
			c.aloneEntries.Add(1)
			break
		}
		if c.term.Err() != nil {
			for _, q := range batch {
				c.termEnded(q.k)
			}
			break
		}
		c.logger.Warn("the outcomes of journaled writes are not recorded yet; their entries wait on the target until they are",
			"migration", first.a.migrationID, "writes", len(batch), "round", round, "err", err)
	}
	c.outcomesDone(batch)
}

// OutcomeCounts is how this capture journaled its writes' outcomes.
type OutcomeCounts struct {
	// Carried rode with a later write's entry; Alone went in entries of
	// their own, Entries of them.
	Carried, Alone, Entries uint64
}

// OutcomesJournaled counts the outcomes journaled so far.
func (c *Capture) OutcomesJournaled() OutcomeCounts {
	return OutcomeCounts{Carried: c.carried.Load(), Alone: c.alone.Load(), Entries: c.aloneEntries.Load()}
}

// outcomesDone counts out of flight the writes whose outcomes were
// journaled, or left to the next term.
func (c *Capture) outcomesDone(batch []queuedOutcome) {
	c.mu.Lock()
	for _, q := range batch {
		delete(c.outcomes, q.k.token)
	}
	c.mu.Unlock()
	for _, q := range batch {
		q.k.a.inflight.Done()
		c.resolving.Done()
	}
}

// carryRoom is how many bytes of outcomes a write's entry of reqLen bytes
// may carry within what the journal takes.
func (c *Capture) carryRoom(reqLen int) int {
	if limit, ok := c.maxEntry(); ok {
		return min(carryBytes, int(limit)-reqLen-entryHeader)
	}
	return carryBytes
}

func rawOutcomes(batch []queuedOutcome) []json.RawMessage {
	out := make([]json.RawMessage, len(batch))
	for i, q := range batch {
		out[i] = q.raw
	}
	return out
}
