package rowcopy

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

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
	// Migration reads the migration as its history records it now.
	Migration(ctx context.Context, migrationID string) (*domain.Migration, error)
}

// progressOf reads a collection's progress from the shared history (nil
// for a collection it does not know).
func (c *Copier) progressOf(ctx context.Context, migrationID, database, collection string) (*domain.CollectionProgress, error) {
	m, err := c.share.Migration(ctx, migrationID)
	if err != nil {
		return nil, err
	}
	for _, p := range m.Collections {
		if p.Database == database && p.Collection == collection {
			return p, nil
		}
	}
	return nil, nil
}

// copied reports whether the shared history records a piece of a
// collection's copy, or the collection as skipped.
func (c *Copier) copied(ctx context.Context, migrationID, database, collection, piece string) (bool, error) {
	p, err := c.progressOf(ctx, migrationID, database, collection)
	if p == nil || err != nil {
		return false, err
	}
	_, done := p.DoneRanges[piece]
	return done || p.Skipped != "", nil
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

// claimed runs copy while holding the range's claim (see claimWork).
func (c *Copier) claimed(ctx context.Context, migrationID string, j job, copy func(held context.Context, first bool) error, elsewhere func(), recorded func() error) error {
	return c.claimWork(ctx, j.work(migrationID), func(ctx context.Context) (bool, error) {
		return c.copied(ctx, migrationID, j.col.Database, j.col.Name, j.r.Name())
	}, copy, elsewhere, recorded)
}

// claimWork runs copy while holding work's claim. When another zdmd holds
// it, or the claim is lost while copying (this zdmd stalled past it, and
// another may be doing the work now), elsewhere is called instead and
// nothing fails; when done reports the history already records the work
// (a copier that passed it over a moment ago), recorded is. Without
// sharing, copy just runs.
func (c *Copier) claimWork(ctx context.Context, work string, done func(context.Context) (bool, error), copy func(held context.Context, first bool) error, elsewhere func(), recorded func() error) error {
	if c.share == nil {
		return copy(ctx, true)
	}
	held, release, first, ok, err := c.share.Claim(ctx, work)
	if err != nil {
		return err
	}
	if !ok {
		elsewhere()
		return nil
	}
	if !first {
		done, err := done(ctx)
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
		c.logger.Warn("lost the claim on a piece of the copy while doing it; it is left to whoever takes it", "work", work, "cause", context.Cause(held))
		elsewhere()
		return nil
	}
	return err
}

// awaitElsewhere waits for the work other zdmd hold: once done reports it
// recorded, it is passed to seen; claimable again (its holder died), it
// is done here by retake, which reports whether it was.
func awaitElsewhere[T any](ctx context.Context, logger *slog.Logger, what string, left []T, done func(T) (bool, error), retake func(T) (bool, error), seen func(T) error) error {
	if len(left) > 0 {
		logger.Info("waiting for "+what+" other zdmd copy", what, len(left))
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for len(left) > 0 {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-tick.C:
		}
		var next []T
		for _, w := range left {
			recorded, err := done(w)
			if err != nil {
				return err
			}
			if recorded {
				if err := seen(w); err != nil {
					return err
				}
				continue
			}
			here, err := retake(w)
			if err != nil {
				return err
			}
			if !here {
				next = append(next, w)
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
	var (
		jobs     []job
		segments []segmentWork
	)
	for _, p := range m.Collections {
		if p.Done || p.Skipped != "" || len(p.Planned) == 0 {
			continue
		}
		col, err := src.Structure(ctx, p.Database, p.Collection)
		if err != nil {
			continue
		}
		if _, err := dst.Structure(ctx, p.Database, p.Collection); err != nil {
			continue
		}
		if _, err := parseStep(p.Planned[0]); err == nil {
			segments = append(segments, segmentWork{p, col})
			continue
		}
		if p.ReadTS == 0 || !col.Loaded {
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
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.helpSegments(gctx, src, dst, m, segments, checkpoint) })
	g.Go(func() error {
		writes, stopWriters := c.writers(dst)
		defer stopWriters()
		return c.each(gctx, jobsOf(jobs), func(ctx context.Context, j job) error {
			return c.claimed(ctx, m.ID, j, func(held context.Context, first bool) error {
				rows, err := c.copyRange(held, src, j.col, j.r, j.ts, first, nil, writes)
				if err != nil {
					return err
				}
				c.logger.Info("range copied for the driving zdmd", "migration", m.ID, "collection", j.col.Key(), "range", j.r.Name(), "rows", rows, "read_at", j.ts)
				return checkpoint(ctx, domain.BulkCopyProgressed{Database: j.col.Database, Collection: j.col.Name, Range: j.r.Name(), Rows: rows})
			}, func() {}, func() error { return nil })
		})
	})
	return g.Wait()
}

// segmentWork is a collection copied by segments that a helper may share.
type segmentWork struct {
	p   *domain.CollectionProgress
	col *milvus.Collection
}

// helpSegments copies the partitions of segment copies that nobody holds,
// Planners collections at a time: the driver listed and planned them, and
// made their collections on the target.
func (c *Copier) helpSegments(ctx context.Context, src, dst *milvus.Conn, m *domain.Migration, work []segmentWork, checkpoint func(context.Context, domain.BulkCopyProgressed) error) error {
	if len(work) == 0 {
		return nil
	}
	r := preparer{c: c, src: src, dst: dst, m: m, checkpoint: checkpoint, helping: true}
	sc, err := r.segmentCopier()
	if err != nil {
		return err
	}
	return inParallel(ctx, work, c.cfg.Planners, func(ctx context.Context, _ int, w segmentWork) error {
		parts, err := partitionsOf(w.p.Planned)
		if err != nil {
			return err
		}
		for _, part := range parts {
			if err := r.sharedPartition(ctx, sc, w.p, w.col, part, func() {}); err != nil {
				return err
			}
		}
		return nil
	})
}
