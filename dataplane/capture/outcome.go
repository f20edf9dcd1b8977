package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/retry"
)

// Journal first. A write is journaled whole before it is forwarded
// (Entry.Pending), and what the source answered follows in a later entry
// of its subject, while the client already has its answer. A write thus
// costs its client one journal round trip, not two (an intent before, the
// entry after), and the journal holds every write it acknowledges before
// the source even sees it. The outcome rides with the next write's entry
// on the subject, or with others in an entry of their own (outbox.go):
// one message per write, not two, where writes keep coming. The applier
// applies a pending write once its outcome is read; one whose outcome
// never comes (its zdmd died first) is repaired from the source like any
// uncertain write (see livesync's outcomes).

// Outcomes of a write journaled first.
const (
	OutcomeApplied = "applied" // the source acknowledged it
	OutcomeRefused = "refused" // the source refused it: nothing happened
	OutcomeUnsent  = "unsent"  // it never left for the source
	OutcomeUnknown = "unknown" // no answer, or the source stopped waiting
)

// Mine reports whether a pending write's token (Entry.Intent) was given by
// this process: its outcome is still to come while the process lives.
func (c *Capture) Mine(token string) bool { return strings.HasPrefix(token, c.boot+"#") }

// Outcome is the outcome of one of this process's writes that is not yet
// journaled: the applier of its process applies the write by it, so a
// journal that cannot take outcomes (a full store) is still applied and
// trimmed.
func (c *Capture) Outcome(token string) (Resolved, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.outcomes[token]
	return r, ok
}

// journalFirst journals a write before it is forwarded, trying for up to
// entryPatience while the client waits. An error means it is not sent.
// The outcomes of the subject's earlier writes ride with it.
func (c *Capture) journalFirst(ctx context.Context, k *call, req []byte) error {
	k.first = true
	k.token = fmt.Sprintf("%s#%d", c.boot, c.writes.Add(1))
	e := k.entry(req)
	e.Pending = true
	box := c.outbox(k.subject)
	carried := box.take(c.carryRoom(len(req)))
	e.Outcomes = rawOutcomes(carried)
	// A large entry's tries take longer: three of them fit in the wait.
	patience, cancel := context.WithTimeout(ctx, entryPatience+3*(tryFor(len(req))-journalTry))
	defer cancel()
	err := c.appendTried(patience, context.WithoutCancel(ctx), k.subject, e, e.Intent, func(err error) error {
		// A full store is told at once: trying again does not free it.
		if errors.Is(err, domain.ErrStoreFull) {
			return retry.Stop(err)
		}
		return err
	})
	if err != nil {
		// Maybe in the journal, maybe not: they go again on their own (a
		// second copy of an outcome changes nothing).
		c.queue(k.subject, box, carried...)
		return err
	}
	c.carried.Add(uint64(len(carried)))
	c.outcomesDone(carried)
	return nil
}

// resolve queues the outcome of a write journaled first, to be journaled
// off the client's path (see outbox.go); the write counts in flight until
// it is, so a hold for the switch waits for it and the fence covers every
// outcome. It is tried until it lands or the term ends; after that, or if
// this process dies first, the applier of the next term repairs the write
// from the source.
func (c *Capture) resolve(k *call, outcome string, res *milvuspb.MutationResult) {
	r := Resolved{Intent: k.token, Outcome: outcome}
	if res != nil {
		r.Timestamp = res.GetTimestamp()
		if outcome == OutcomeApplied && (k.op == OpInsert || k.op == OpUpsert) {
			ids := milvus.KeysOfIDs(res.GetIDs())
			r.IDs = &ids
		}
	}
	raw, err := json.Marshal(r)
	if err != nil {
		// Keys and strings always encode; were it not so, the write is
		// left to the repair from the source like one whose zdmd died.
		c.logger.Error("the outcome of a journaled write could not be encoded", "migration", k.a.migrationID, "err", err)
		k.a.inflight.Done()
		return
	}
	c.mu.Lock()
	c.outcomes[k.token] = r
	c.mu.Unlock()
	c.resolving.Add(1)
	c.queue(k.subject, c.outbox(k.subject), queuedOutcome{k: k, raw: raw})
}

// appendTried journals e on subject under the journal's retry policy while
// loop lasts, each try under try; judge (nil: none) may stop the tries at
// an error. It is encoded in a recycled buffer, which the append copies.
// id (none: "") names the entry, so a try that landed unanswered is not
// stored twice.
func (c *Capture) appendTried(loop, try context.Context, subject string, e Entry, id string, judge func(error) error) error {
	buf, _ := c.entries.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	*buf = e.AppendTo((*buf)[:0])
	defer c.entries.Put(buf)
	return c.tries(loop, try, len(*buf), func(tctx context.Context) error {
		_, err := c.journal.Append(tctx, subject, *buf, id)
		if err != nil && judge != nil {
			return judge(err)
		}
		return err
	})
}

// Settle waits until the outcomes being journaled are, or ctx ends.
func (c *Capture) Settle(ctx context.Context) {
	done := make(chan struct{})
	go func() { c.resolving.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		c.logger.Warn("outcomes of writes still not journaled; the next term repairs their writes from the source")
	}
}
