package verify

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"golang.org/x/sync/errgroup"
)

// A key inserted again with other values (an application reusing its own
// key, or random keys that collide) is held by Milvus in two rows, and a
// query answers with either, not always the same one: on the test bed's
// Milvus 2.3, rows of one key in two segments came back in turns from
// one query to the next. zdm applies inserts by key, so the target holds
// the last write (the row copy: the row it read; a segment copy: every
// row, as the source). No target could match an answer that changes
// between two queries; such a key, held in one partition on both sides,
// in several rows on the source and in one or as many on the target, is
// not a difference. The report counts it (keys_inserted_again) and the
// summary says so.

// againMax bounds the keys counted one by one.
const againMax = 100

// insertedAgain returns those of keys (whose rows differ) that the source
// holds in several rows of one partition and the target in one row, or
// as many, of the same. byPart gives each key's partitions where the
// collection has several (nil: it has one).
func insertedAgain(ctx context.Context, src, dst sideOf, pk *schemapb.FieldSchema, keys []string, byPart *partitionRows) (map[string]bool, error) {
	if len(keys) == 0 || len(keys) > againMax {
		return nil, nil
	}
	var mu sync.Mutex
	rows := map[string][2]int64{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(splitKeysParallel)
	for _, k := range keys {
		if byPart != nil {
			if s := byPart.in(0, k); len(s) != 1 || !slices.Equal(s, byPart.in(1, k)) {
				continue // held in several partitions, or in others on each side
			}
		}
		for side, s := range []sideOf{src, dst} {
			g.Go(func() error {
				n, err := s.c.CountAt(gctx, s.db, s.cl, keysExpr(pk, []string{k}), s.ts)
				if err != nil {
					return fmt.Errorf("count the rows of key %s of %s/%s: %w", k, s.db, s.cl, err)
				}
				mu.Lock()
				defer mu.Unlock()
				r := rows[k]
				r[side] = n
				rows[k] = r
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	again := map[string]bool{}
	for k, r := range rows {
		if r[0] > 1 && (r[1] == 1 || r[1] == r[0]) {
			again[k] = true
		}
	}
	return again, nil
}

// againNote says how many keys the sources hold inserted again with other
// values ("" if none).
func (r *Report) againNote() string {
	keys := r.total(func(c CollectionReport) int { return c.AgainKeys })
	if keys == 0 {
		return ""
	}
	return fmt.Sprintf("%d keys are held on the source in several rows with other values (inserted again; Milvus answers such a key with any of its rows, so they cannot be compared): the target holds one of them, the last written through zdm, or all of them where a segment copy moved them", keys)
}

// total sums a figure over the collections.
func (r *Report) total(of func(CollectionReport) int) int {
	n := 0
	for _, c := range r.Collections {
		n += of(c)
	}
	return n
}
