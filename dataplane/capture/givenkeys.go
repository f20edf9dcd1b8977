package capture

import (
	"context"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// The largest key the source gave an insert of each collection (see
// Entry.AfterKey) is kept in a bucket (KeepGivenKeys), so that a zdmd
// that restarts or takes over knows one before it sees an insert
// answered. Without it, an insert it left uncertain in that time could be
// repaired only by comparing the whole collection. A kept key was given
// before any write sent after it was read, so an older one is still
// right: the repair reads more, nothing else.

// givenPrefix starts the keys of the kept keys.
const givenPrefix = "given."

// givenKey names the kept key of a journal subject.
func givenKey(subject string) string { return givenPrefix + hex.EncodeToString([]byte(subject)) }

// givenRead bounds the read of a kept key, in the path of a collection's
// first insert since this zdmd started.
const givenRead = 500 * time.Millisecond

// afterKeyOf is the largest key the source gave an insert of subject as
// far as this zdmd knows, reading the kept one the first time.
func (c *Capture) afterKeyOf(ctx context.Context, subject string) int64 {
	c.mu.Lock()
	known, read := c.givenKeys[subject], c.givenRead[subject]
	c.mu.Unlock()
	if known > 0 || read || c.kept == nil {
		return known
	}
	rctx, cancel := context.WithTimeout(ctx, givenRead)
	defer cancel()
	kept, err := c.kept.Matching(rctx, givenKey(subject))
	if err != nil {
		// Read once, failed or not: the next inserts of the collection
		// do not each wait for a bucket that does not answer.
		c.logger.Debug("the key kept for a collection's inserts was not read", "subject", subject, "err", err)
	}
	n, _ := strconv.ParseInt(string(kept[givenKey(subject)]), 10, 64)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.givenRead[subject] = true
	c.givenKept[subject] = max(c.givenKept[subject], n)
	c.givenKeys[subject] = max(c.givenKeys[subject], n)
	return c.givenKeys[subject]
}

// keepEvery is how often the keys given are kept: each is a put of every
// collection inserted into since, and an older key is still right.
const keepEvery = 5 * time.Second

// keepGivenKeys stores the keys given since they were last kept, for the
// armed migrations, at most every keepEvery.
func (c *Capture) keepGivenKeys(ctx context.Context) {
	if c.kept == nil {
		return
	}
	c.mu.Lock()
	if time.Since(c.givenKeptAt) < keepEvery {
		c.mu.Unlock()
		return
	}
	c.givenKeptAt = time.Now()
	todo := map[string]int64{}
	for subject, k := range c.givenKeys {
		if k <= c.givenKept[subject] {
			continue
		}
		for _, a := range c.armed {
			if strings.HasPrefix(subject, JournalPrefix(a.migrationID)) {
				todo[subject] = k
			}
		}
	}
	c.mu.Unlock()
	for subject, k := range todo {
		if err := c.kept.Put(ctx, givenKey(subject), []byte(strconv.FormatInt(k, 10))); err != nil {
			c.logger.Warn("the last key the source gave a collection's inserts was not kept", "subject", subject, "err", err)
			continue
		}
		c.mu.Lock()
		c.givenKept[subject] = max(c.givenKept[subject], k)
		c.mu.Unlock()
	}
}

// dropGivenKeys deletes the kept keys of a migration that ended.
func (c *Capture) dropGivenKeys(ctx context.Context, migrationID string) error {
	kept, err := c.kept.Matching(ctx, givenPrefix+">")
	if err != nil {
		return err
	}
	for key := range kept {
		subject, err := hex.DecodeString(strings.TrimPrefix(key, givenPrefix))
		if err != nil || !strings.HasPrefix(string(subject), JournalPrefix(migrationID)) {
			continue
		}
		if err := c.kept.Delete(ctx, key); err != nil {
			return err
		}
	}
	return nil
}

// DropKept forgets what was kept for an ended migration.
func (c *Capture) DropKept(ctx context.Context, migrationID string) error {
	if c.kept == nil {
		return nil
	}
	return c.dropGivenKeys(ctx, migrationID)
}
