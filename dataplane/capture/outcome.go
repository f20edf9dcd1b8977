package capture

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/retry"
)

// Journal first. A write is journaled whole before it is forwarded
// (Entry.Pending), and what the source answered follows as a small entry
// of its own (OpOutcome), appended while the client already has its
// answer. A write thus costs its client
// one journal round trip, not two (an intent before, the entry after),
// and the journal holds every write it acknowledges before the source
// even sees it. The applier applies a pending write once its outcome is
// read; one whose outcome never comes (its zdmd died first) is repaired
// from the source like any uncertain write (see livesync's outcomes).

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
func (c *Capture) Outcome(token string) (Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.outcomes[token]
	return e, ok
}

// journalFirst journals a write before it is forwarded, trying for up to
// entryPatience while the client waits. An error means it is not sent.
func (c *Capture) journalFirst(ctx context.Context, k *call, req []byte) error {
	k.first = true
	k.token = fmt.Sprintf("%s#%d", c.boot, c.writes.Add(1))
	e := k.entry(req)
	e.Pending = true
	patience, cancel := context.WithTimeout(ctx, entryPatience)
	defer cancel()
	return c.appendTried(patience, context.WithoutCancel(ctx), k.subject, e, func(err error) error {
		// A full store is told at once: trying again does not free it.
		if errors.Is(err, domain.ErrStoreFull) {
			return retry.Stop(err)
		}
		return err
	})
}

// resolve journals the outcome of a write journaled first, off the
// client's path, and only then counts the write out of flight: a hold
// for the switch waits for it, so the fence covers every outcome. It is
// tried until it lands or the term ends; after that, or if this process
// dies first, the applier of the next term repairs the write from the
// source.
func (c *Capture) resolve(k *call, outcome string, res *milvuspb.MutationResult) {
	e := Entry{Op: OpOutcome, Method: k.method, Database: k.db, Collection: k.coll, Intent: k.token, Outcome: outcome, At: time.Now()}
	if res != nil {
		e.Timestamp = res.GetTimestamp()
		if outcome == OutcomeApplied && (k.op == OpInsert || k.op == OpUpsert) {
			ids := milvus.KeysOfIDs(res.GetIDs())
			e.IDs = &ids
		}
	}
	c.mu.Lock()
	c.outcomes[k.token] = e
	c.mu.Unlock()
	c.resolving.Add(1)
	go func() {
		defer c.resolving.Done()
		defer k.a.inflight.Done()
		defer func() {
			c.mu.Lock()
			delete(c.outcomes, k.token)
			c.mu.Unlock()
		}()
		for round := 1; ; round++ {
			err := c.appendTried(c.term, c.term, k.subject, e, nil)
			if err == nil {
				return
			}
			if c.term.Err() != nil {
				c.termEnded(k)
				return
			}
			c.logger.Warn("the outcome of a journaled write is not recorded yet; its entry waits on the target until it is",
				"migration", k.a.migrationID, "method", k.method, "round", round, "err", err)
		}
	}()
}

// appendTried journals e on subject under the journal's retry policy while
// loop lasts, each try under try; judge (nil: none) may stop the tries at
// an error. It is encoded in a recycled buffer, which the append copies.
// The entry's intent names it, so a try that landed unanswered is not
// stored twice.
func (c *Capture) appendTried(loop, try context.Context, subject string, e Entry, judge func(error) error) error {
	buf, _ := c.entries.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	*buf = e.AppendTo((*buf)[:0])
	defer c.entries.Put(buf)
	id := e.Intent
	if e.Op == OpOutcome {
		id += "/outcome"
	}
	return c.tries(loop, try, func(tctx context.Context) error {
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
