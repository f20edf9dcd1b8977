package capture

import (
	"context"
	"maps"
)

// broken ends a call that reached the cluster without an answer: the write
// may or may not have happened there, so it is journaled as uncertain,
// with its keys only (the repair reads the source's rows of those keys).
// If even that cannot be journaled, the migration fails: its target would
// miss a write the source may hold.
func (c *Capture) broken(ctx context.Context, k *call) {
	if k.a == nil {
		return
	}
	defer k.a.inflight.Done()
	defer c.order.release(k.claim)
	if k.kind == "write" {
		c.uncertain(ctx, k)
	}
}

// uncertain journals a write whose outcome is not known as uncertain.
func (c *Capture) uncertain(ctx context.Context, k *call) {
	if err := c.appendUncertain(context.WithoutCancel(ctx), k.a.migrationID, k.entry(k.keys)); err != nil {
		if c.term.Err() != nil {
			c.termEnded(k)
			return
		}
		c.journalLost(ctx, k, "a write without a known outcome could not be journaled as uncertain", err)
		return
	}
	// Logged like the writes a dead zdmd left: a post-mortem of a target
	// that misses rows starts from the writes repaired from the source.
	c.logger.Warn("a write without a known outcome (broken off on its way, or not waited for by the source) will be repaired from the source", "migration", k.a.migrationID,
		"method", k.method, "collection", k.db+"/"+k.coll)
	c.settle(k)
}

// termEnded leaves a write whose entry the term ended before journaling
// to the next term: its intent stays (its slot is not given back), and the
// next term's Recover repairs it.
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
