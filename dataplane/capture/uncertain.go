package capture

import (
	"context"
	"maps"
)

// broken ends a call that reached the cluster without an answer: a write
// may or may not have happened there, and its outcome says it is not
// known (the applier copies the source's rows of its keys).
func (c *Capture) broken(ctx context.Context, k *call) {
	if k.a == nil {
		return
	}
	c.order.release(k.claim)
	if !k.first {
		k.a.inflight.Done()
		return
	}
	c.logger.Warn("a write broken off on its way will be repaired from the source", "migration", k.a.migrationID,
		"method", k.method, "collection", k.db+"/"+k.coll)
	c.resolve(k, OutcomeUnknown, nil)
}

// termEnded leaves a write whose outcome or entry the term ended before
// journaling to the next term, whose applier repairs it from the source.
func (c *Capture) termEnded(k *call) {
	c.logger.Warn("this zdmd stopped driving before a write's outcome was journaled; the next one repairs it from the source",
		"migration", k.a.migrationID, "method", k.method)
}

// journalLost fails the migration of a write the journal could not take
// after it reached the source: the last resort, the target would miss it.
func (c *Capture) journalLost(ctx context.Context, k *call, what string, err error) {
	c.logger.Error(what+"; the migration fails", "migration", k.a.migrationID, "err", err)
	if c.failer == nil {
		return
	}
	detail := what + ": " + err.Error()
	if ferr := c.failer.FailMigration(context.WithoutCancel(ctx), k.a.migrationID, "journal_unavailable", detail); ferr != nil {
		c.logger.Error("the migration could not be failed either; it will not switch, and its failure is recorded once the event store is back",
			"migration", k.a.migrationID, "err", ferr)
		c.mu.Lock()
		c.unfailed[k.a.migrationID] = detail
		c.mu.Unlock()
	}
}

// failLost records the failures journalLost could not, once the event
// store takes them.
func (c *Capture) failLost(ctx context.Context) {
	c.mu.Lock()
	todo := maps.Clone(c.unfailed)
	c.mu.Unlock()
	for id, detail := range todo {
		if err := c.failer.FailMigration(ctx, id, "journal_unavailable", detail); err != nil {
			c.logger.Warn("the failure of a migration that lost a write is still not recorded", "migration", id, "err", err)
			continue
		}
		c.mu.Lock()
		delete(c.unfailed, id)
		c.mu.Unlock()
	}
}
