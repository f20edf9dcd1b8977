package rowcopy

import (
	"context"
	"sync"
	"time"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/domain"
)

// Sharing lets several zdmd copy one migration: a range is copied by
// whoever holds its claim, and recorded in the migration's history once.
type Sharing interface {
	// Claim takes the claim on a piece of work if nobody holds it: held
	// lasts while it is kept, release gives it up, and first reports that
	// nobody ever claimed the piece (nothing of it was written).
	Claim(ctx context.Context, work string) (held context.Context, release func(), first, ok bool, err error)
	// Copied reports whether the migration's history records the range.
	Copied(ctx context.Context, migrationID, database, collection, rng string) (bool, error)
}

// Share makes the copier share ranges with the other zdmd through s.
func (c *Copier) Share(s Sharing) { c.share = s }

// job is one range to copy, read at the source timestamp ts.
type job struct {
	col *milvus.Collection
	r   milvus.KeyRange
	ts  uint64
}

// work names a range of a migration among every zdmd.
func (j job) work(migrationID string) string {
	return migrationID + "/" + j.col.Key() + "/" + j.r.Name()
}

// claimed runs copy while holding the range's claim. When another zdmd
// holds it, or the claim is lost while copying (this zdmd stalled past
// it, and another may be copying the range now), elsewhere is called
// instead and nothing fails; when the history already records it (a copier
// that passed it over a moment ago), recorded is. Without sharing, copy
// just runs.
func (c *Copier) claimed(ctx context.Context, migrationID string, j job, copy func(held context.Context, first bool) error, elsewhere func(), recorded func() error) error {
	if c.share == nil {
		return copy(ctx, true)
	}
	held, release, first, ok, err := c.share.Claim(ctx, j.work(migrationID))
	if err != nil {
		return err
	}
	if !ok {
		elsewhere()
		return nil
	}
	if !first {
		done, err := c.share.Copied(ctx, migrationID, j.col.Database, j.col.Name, j.r.Name())
		if err != nil || done {
			release()
			if err != nil {
				return err
			}
			return recorded()
		}
	}
	err = copy(held, first)
	release()
	if err != nil && held.Err() != nil && ctx.Err() == nil {
		c.logger.Warn("lost the claim on a range while copying it; it is left to whoever takes it", "range", j.work(migrationID), "cause", context.Cause(held))
		elsewhere()
		return nil
	}
	return err
}

// awaitElsewhere waits for the ranges other zdmd hold: recorded, each is
// passed to seen; claimable again (its holder died), it is copied here by
// retake, which reports whether it did.
func (c *Copier) awaitElsewhere(ctx context.Context, migrationID string, left []job, retake func(job) (bool, error), seen func(job) error) error {
	if len(left) > 0 {
		c.logger.Info("waiting for ranges other zdmd copy", "migration", migrationID, "ranges", len(left))
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for len(left) > 0 {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-tick.C:
		}
		var next []job
		for _, j := range left {
			done, err := c.share.Copied(ctx, migrationID, j.col.Database, j.col.Name, j.r.Name())
			if err != nil {
				return err
			}
			if done {
				if err := seen(j); err != nil {
					return err
				}
				continue
			}
			here, err := retake(j)
			if err != nil {
				return err
			}
			if !here {
				next = append(next, j)
			}
		}
		left = next
	}
	return nil
}

// writers starts the page writers, each page written under its range's
// context; stop waits for them once no page is sent any more.
func (c *Copier) writers(dst *milvus.Conn) (writes chan pageWrite, stop func()) {
	// Unbuffered: a reader hands its page over only to an idle writer, so
	// at most Readers + Workers pages are in memory.
	writes = make(chan pageWrite)
	var wg sync.WaitGroup
	for w := 0; w < c.cfg.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pw := range writes {
				pw.done(writePage(pw.ctx, dst, c.cfg.Retry, pw))
			}
		}()
	}
	return writes, func() { close(writes); wg.Wait() }
}

// each runs run over the jobs feed sends, Readers at a time, until the
// first error, which cancels the ctx the others and feed run with; send
// reports false once it has.
func (c *Copier) each(ctx context.Context, feed func(ctx context.Context, send func(job) bool) error, run func(context.Context, job) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	queue := make(chan job)
	var wg sync.WaitGroup
	for w := 0; w < c.cfg.Readers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				if err := run(ctx, j); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	err := feed(ctx, func(j job) bool {
		select {
		case queue <- j:
			return true
		case <-ctx.Done():
			return false
		}
	})
	if err != nil {
		cancel(err)
	}
	close(queue)
	wg.Wait()
	return context.Cause(ctx)
}

// jobsOf feeds each the jobs of a list.
func jobsOf(jobs []job) func(context.Context, func(job) bool) error {
	return func(_ context.Context, send func(job) bool) error {
		for _, j := range jobs {
			if !send(j) {
				return nil
			}
		}
		return nil
	}
}

// Help copies ranges of a migration another zdmd drives: every range that
// neither its history records nor anyone holds, until none is left. The
// driver made the collections on the target, loads them and records the
// end of the copy; a collection it has not reached yet is left to it.
//
// A migration with a copy rate limit is copied by its driver alone: the
// limit bounds what the source serves, whoever reads it. A helper stops
// within a second of a limit being set.
func (c *Copier) Help(ctx context.Context, m *domain.Migration, checkpoint func(context.Context, domain.BulkCopyProgressed) error) error {
	if c.share == nil || m.Options.CopyRateLimit > 0 {
		return nil
	}
	parent := ctx
	if c.rateLimit != nil {
		var stop context.CancelFunc
		ctx, stop = context.WithCancel(ctx)
		defer stop()
		t := newThrottle(0)
		changed := t.changes()
		go t.follow(ctx, func(ctx context.Context) (int64, error) { return c.rateLimit(ctx, m.ID) })
		go func() {
			select {
			case <-changed: // the only change from none is to a limit
				stop()
			case <-ctx.Done():
			}
		}()
	}
	err := c.help(ctx, m, checkpoint)
	if parent.Err() == nil && ctx.Err() != nil {
		return nil // a limit was set: the driver copies the rest
	}
	return err
}

func (c *Copier) help(ctx context.Context, m *domain.Migration, checkpoint func(context.Context, domain.BulkCopyProgressed) error) error {
	src, dst, err := c.connect(ctx, m)
	if err != nil {
		return err
	}
	defer src.Close()
	defer dst.Close()
	var jobs []job
	for _, p := range m.Collections {
		if p.Done || p.Skipped != "" || p.ReadTS == 0 || len(p.Planned) == 0 {
			continue
		}
		col, err := src.Structure(ctx, p.Database, p.Collection)
		if err != nil || !col.Loaded {
			continue
		}
		if _, err := dst.Structure(ctx, p.Database, p.Collection); err != nil {
			continue
		}
		for _, name := range p.Planned {
			if _, done := p.DoneRanges[name]; done {
				continue
			}
			if r, err := milvus.ParseRange(name); err == nil {
				jobs = append(jobs, job{col: col, r: r, ts: p.ReadTS})
			}
		}
	}
	writes, stopWriters := c.writers(dst)
	defer stopWriters()
	return c.each(ctx, jobsOf(jobs), func(ctx context.Context, j job) error {
		return c.claimed(ctx, m.ID, j, func(held context.Context, first bool) error {
			rows, err := c.copyRange(held, src, j.col, j.r, j.ts, first, nil, writes)
			if err != nil {
				return err
			}
			c.logger.Info("range copied for the driving zdmd", "migration", m.ID, "collection", j.col.Key(), "range", j.r.Name(), "rows", rows, "read_at", j.ts)
			return checkpoint(ctx, domain.BulkCopyProgressed{Database: j.col.Database, Collection: j.col.Name, Range: j.r.Name(), Rows: rows})
		}, func() {}, func() error { return nil })
	})
}
