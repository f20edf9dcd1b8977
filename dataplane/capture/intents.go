package capture

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Intent slots. Every write is recorded under a slot's key before it is
// forwarded. Once the write is journaled its slot is free again at once,
// still holding the intent: the journal entry names the intent it settles
// (Entry.Intent), so a leftover intent whose entry is in the journal is
// known settled at the next start and is not repaired. Clearing each slot
// after each write cost a third JetStream operation per write, as much CPU
// as the journal append itself under load; now only slots left idle are
// cleared (SweepIntents), which keeps what a restart has to check recent.

// sweepAfter is how long a free slot holding a settled intent waits before
// SweepIntents clears it.
const sweepAfter = time.Second

// slotPool is one migration's intent slots.
type slotPool struct {
	next    int
	free    []int             // last freed first: a busy proxy reuses a few slots
	settled map[int]time.Time // free slots still holding a settled intent, since
}

func (c *Capture) pool(migrationID string) *slotPool {
	p := c.slots[migrationID]
	if p == nil {
		p = &slotPool{settled: map[int]time.Time{}}
		c.slots[migrationID] = p
	}
	return p
}

func (c *Capture) takeSlot(migrationID string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pool(migrationID)
	if n := len(p.free); n > 0 {
		s := p.free[n-1]
		p.free = p.free[:n-1]
		delete(p.settled, s) // about to be overwritten
		return s
	}
	p.next++
	return p.next
}

// giveSlot frees a slot; settled says it still holds a settled intent.
func (c *Capture) giveSlot(migrationID string, slot int, settled bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.slots[migrationID]
	if p == nil {
		return // the migration ended (DropIntents): its slots are gone
	}
	p.free = append(p.free, slot)
	if settled {
		p.settled[slot] = time.Now()
	}
}

func (c *Capture) intentKey(migrationID string, slot int) string {
	return fmt.Sprintf("%s.%s.%d", migrationID, c.boot, slot)
}

// SweepIntents clears the free slots whose settled intent has waited
// sweepAfter; a slot is out of use while it is cleared, so a new intent
// is never erased.
func (c *Capture) SweepIntents(ctx context.Context) {
	if c.intents == nil {
		return
	}
	type slot struct {
		migration string
		pool      *slotPool
		n         int
	}
	var todo []slot
	c.mu.Lock()
	now := time.Now()
	for id, p := range c.slots {
		kept := p.free[:0]
		for _, s := range p.free {
			if at, ok := p.settled[s]; ok && now.Sub(at) >= sweepAfter {
				todo = append(todo, slot{id, p, s})
				continue
			}
			kept = append(kept, s)
		}
		p.free = kept
	}
	c.mu.Unlock()
	for _, s := range todo {
		key := c.intentKey(s.migration, s.n)
		err := c.intents.Put(ctx, key, nil)
		if err != nil {
			c.logger.Warn("settled write intent not cleared; it is cleared later", "migration", s.migration, "err", err)
		}
		c.mu.Lock()
		ended := c.slots[s.migration] != s.pool
		if !ended {
			s.pool.free = append([]int{s.n}, s.pool.free...) // idle: reused last
			if err == nil {
				delete(s.pool.settled, s.n)
			}
		}
		c.mu.Unlock()
		if ended { // DropIntents ran meanwhile: leave no key behind
			if err := c.intents.Delete(ctx, key); err != nil {
				c.logger.Warn("write intent of an ended migration not deleted", "key", key, "err", err)
			}
		}
	}
}

// errScanned ends a journal scan at the entry that was last when it began.
var errScanned = errors.New("scanned")

// settledIntents returns which of the intents are named by an entry of
// the migration's journal after sequence `after`, up to `last`.
func (c *Capture) settledIntents(ctx context.Context, migrationID string, after, last uint64, intents map[string]bool) (map[string]bool, error) {
	if last <= after {
		return nil, nil
	}
	filter := JournalPrefix(migrationID) + ">"
	settled := map[string]bool{}
	err := c.journal.Follow(ctx, filter, after+1, func(seq uint64, data []byte, _ uint64) error {
		if e, err := UnmarshalEntry(data); err == nil && intents[e.Intent] {
			settled[e.Intent] = true
		}
		if seq >= last || len(settled) == len(intents) {
			return errScanned
		}
		return nil
	})
	if !errors.Is(err, errScanned) {
		return nil, fmt.Errorf("scan the journal for settled intents: %w", err)
	}
	return settled, nil
}

// Recover turns the intents a previous zdmd left for a migration into
// uncertain entries of its journal, once per process. The applier then
// copies the source's state of the keys they touched: a write the source
// applied but zdm never journaled still reaches the target.
func (c *Capture) Recover(ctx context.Context, migrationID string) error {
	if c.intents == nil {
		return nil
	}
	c.mu.Lock()
	done := c.recovered[migrationID]
	c.mu.Unlock()
	if done {
		return nil
	}
	// Intents recorded from now on are settled after the journal as it is.
	last, err := c.journal.LastSeq(ctx, JournalPrefix(migrationID)+">")
	if err != nil {
		return err
	}
	c.sawSeq(last) // every leftover intent's entry, if any, is at or before last
	mine, err := c.intentsOf(ctx, migrationID)
	if err != nil {
		return err
	}
	left := map[string]Entry{}
	named := map[string]bool{}
	after := uint64(math.MaxUint64)
	for key, value := range mine {
		if strings.HasPrefix(key, migrationID+"."+c.boot+".") {
			continue // this process's own writes
		}
		if len(value) == 0 { // an empty slot holds no write
			if err := c.intents.Delete(ctx, key); err != nil {
				return err
			}
			continue
		}
		e, err := UnmarshalEntry(value)
		if err != nil {
			return fmt.Errorf("write intent %s: %w", key, err)
		}
		left[key] = e
		if e.Intent != "" {
			named[e.Intent] = true
			after = min(after, e.After)
		}
	}
	var settled map[string]bool
	if len(named) > 0 {
		if settled, err = c.settledIntents(ctx, migrationID, after, last, named); err != nil {
			return err
		}
	}
	for key, e := range left {
		if !settled[e.Intent] {
			if err := c.appendUncertain(ctx, migrationID, e); err != nil {
				return err
			}
			c.logger.Warn("a write without a known outcome will be repaired from the source", "migration", migrationID,
				"method", e.Method, "collection", e.Database+"/"+e.Collection)
		}
		if err := c.intents.Delete(ctx, key); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.recovered[migrationID] = true
	c.mu.Unlock()
	return nil
}

// DropIntents forgets the intents of an ended migration.
func (c *Capture) DropIntents(ctx context.Context, migrationID string) error {
	if c.intents == nil {
		return nil
	}
	mine, err := c.intentsOf(ctx, migrationID)
	if err != nil {
		return err
	}
	for key := range mine {
		if err := c.intents.Delete(ctx, key); err != nil {
			return err
		}
	}
	if err := c.dropGivenKeys(ctx, migrationID); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.slots, migrationID)
	c.mu.Unlock()
	return nil
}

// intentsOf returns a migration's intents, by key: the bucket keeps a
// marker of every intent deleted, of every migration, and only this one's
// are read.
func (c *Capture) intentsOf(ctx context.Context, migrationID string) (map[string][]byte, error) {
	mine, err := c.intents.Matching(ctx, migrationID+".>")
	if err != nil {
		return nil, fmt.Errorf("read write intents: %w", err)
	}
	return mine, nil
}

func (c *Capture) appendUncertain(ctx context.Context, migrationID string, e Entry) error {
	e.Op, e.At = OpUncertain, time.Now()
	if err := c.appendEntry(ctx, CollectionSubject(migrationID, e.Database, e.Collection), e); err != nil {
		return fmt.Errorf("journal an uncertain write: %w", err)
	}
	return nil
}
