package livesync

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/verify"
	"github.com/zdm-io/zdm/domain"
)

// DefaultExpirySweepEvery is how often the sync deletes from the target
// the rows the source removed after their time to live.
const DefaultExpirySweepEvery = 2 * time.Minute

// sweepRounds bounds the walks of one collection in one sweep; each
// deletes up to 100,000 rows (verify.TargetOnly).
const sweepRounds = 10

// sweepDeleteWithin bounds one delete of a sweep. It is not cut short
// when the sweep is, only when the run ends as the applier's own writes
// are: the collection's applier waits for it, so that no write it
// applies can land before the delete.
const sweepDeleteWithin = time.Minute

// sweepExpiredEvery sweeps every interval until ctx ends.
func (s *Syncer) sweepExpiredEvery(ctx context.Context, m *domain.Migration, r *syncRun) {
	tick := time.NewTicker(s.cfg.ExpirySweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.sweepExpired(ctx, m, r)
	}
}

// sweepExpired deletes from the target, while writes flow, the rows of
// every collection whose rows expire (collection.ttl.seconds) that the
// source's compaction removed and the target, which counts their time to
// live from the copy, still holds. Left to the switch, they lengthened its
// pause, and past 100,000 in one collection refused it. Each key is read
// on the source again, and deleted, while no entry of its collection is
// applied (betweenEntries): a write of it the source took before that read
// kept it, and one taken after is applied after the delete. It returns
// how many rows it deleted, by collection; a collection it could not read
// is left to the next sweep, or to the switch.
func (s *Syncer) sweepExpired(ctx context.Context, m *domain.Migration, r *syncRun) map[[2]string]int {
	swept := map[[2]string]int{}
	cols, err := r.source.Expiring(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.logger.Warn("the sweep of rows removed after their time to live could not list the source", "migration", m.ID, "err", err)
		}
		return swept
	}
	for _, col := range cols {
		n, held, err := s.sweepCollection(ctx, r, col)
		if n > 0 {
			swept[[2]string{col.Database, col.Name}] = n
			s.logger.Info("rows the source removed after their time to live deleted from the target",
				"migration", m.ID, "collection", col.Key(), "rows", n, "longest_applier_pause", held)
			s.note(ctx, m, fmt.Sprintf("the source removed rows of %s after their time to live (collection.ttl.seconds); "+
				"the target, which counts it from the copy, kept them, and the sync deletes them from the target as it goes", col.Key()))
		}
		if err != nil && ctx.Err() == nil {
			s.logger.Warn("rows removed after their time to live not swept from the target; tried again at the next sweep",
				"migration", m.ID, "collection", col.Key(), "err", err)
		}
	}
	return swept
}

// sweepCollection sweeps one collection. It returns how many rows it
// deleted and the longest it kept the collection's applier from applying.
func (s *Syncer) sweepCollection(ctx context.Context, r *syncRun, col *milvus.Collection) (deleted int, held time.Duration, err error) {
	if ok, err := verify.Sweepable(ctx, r.source, col); !ok {
		return 0, 0, err
	}
	for range sweepRounds {
		keys, more, err := verify.TargetOnly(ctx, r.source, r.target, col)
		if err != nil || len(keys) == 0 {
			return deleted, held, err
		}
		n, h, err := s.removeGone(ctx, r, col, keys)
		deleted, held = deleted+n, max(held, h)
		if err != nil || ctx.Err() != nil {
			return deleted, held, err
		}
		if !more {
			break
		}
	}
	return deleted, held, nil
}

// removeGone deletes from the target those of keys (rows the target
// alone held when they were listed) that the source still lacks, read
// again while no entry of col is applied (betweenEntries), a batch at a
// time. A batch whose applier was not between two entries in time is
// left, for the next sweep or the switch. It returns how many rows it
// deleted and the longest it kept the collection's applier from applying.
func (s *Syncer) removeGone(ctx context.Context, r *syncRun, col *milvus.Collection, keys []string) (deleted int, held time.Duration, err error) {
	for batch := range slices.Chunk(keys, sweepChunk*sweepChunks) {
		var n atomic.Int64
		_, err := r.applier.betweenEntries(ctx, col.Database, col.Name, settleLock, func() error {
			began := time.Now()
			defer func() { held = max(held, time.Since(began)) }()
			dctx, cancel := context.WithTimeout(r.ctx, sweepDeleteWithin)
			defer cancel()
			// The chunks are read at once: each strong read waits for
			// the source's next time tick, and they wait for the same.
			g, gctx := errgroup.WithContext(dctx)
			for chunk := range slices.Chunk(batch, sweepChunk) {
				g.Go(func() error {
					gone, err := verify.RemoveGone(gctx, r.source, r.target, col, chunk)
					n.Add(int64(gone))
					return err
				})
			}
			return g.Wait()
		})
		if deleted += int(n.Load()); err != nil || ctx.Err() != nil {
			return deleted, held, err
		}
	}
	return deleted, held, nil
}

// sweepChunk is the keys of one query and one delete; sweepChunks of
// them are read and deleted at once, holding the collection's applier
// for about one time tick of the source (200 ms) and the deletes.
const (
	sweepChunk  = 2_000
	sweepChunks = 8
)

// note records in the migration's status what the operator should know.
func (s *Syncer) note(ctx context.Context, m *domain.Migration, note string) {
	if s.cfg.Notes == nil {
		return
	}
	if err := s.cfg.Notes.NoteMigration(ctx, m.ID, note); err != nil {
		s.logger.Warn("a note could not be recorded in the migration's status", "migration", m.ID, "err", err)
	}
}
