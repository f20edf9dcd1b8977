package rowcopy

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/retry"
)

// pageWrite is one page on its way to the target.
type pageWrite struct {
	// ctx is its range's: a page read under a claim is not written once
	// the claim is lost.
	ctx   context.Context
	col   *milvus.Collection
	part  string
	cols  []*schemapb.FieldData
	rows  int
	fresh bool
	done  func(error)
}

// writePage writes one page. On a fresh copy nobody wrote the range
// before, so it is inserted; otherwise, and for a retried page whose first
// try may have landed, it is upserted, so a row is never written twice.
func writePage(ctx context.Context, dst *milvus.Conn, policy retry.Policy, pw pageWrite) error {
	err := policy.Do(ctx, func(tries int) error {
		var err error
		if pw.fresh && tries == 1 {
			_, err = dst.Insert(ctx, pw.col.Database, pw.col.Name, pw.part, pw.cols, pw.rows)
		} else {
			_, err = dst.Upsert(ctx, pw.col.Database, pw.col.Name, pw.part, pw.cols, pw.rows)
		}
		return err
	})
	if milvus.NeverSent(err) {
		// The saga tries the step again, from the last checkpoint.
		return &domain.StepError{Reason: "target_unreachable", Err: fmt.Errorf("target %s: %w", dst.Address(), err)}
	}
	return err
}

// copyRange reads one range page by page, in key order: each page is the
// next PageRows keys after the last one read, and goes to the writers
// while the next one is read. It returns once every page is written.
// Pages are read at ts (see readTimestamp), or strongly consistent when
// it is 0; never relaxed: a relaxed read can miss rows written just before
// the lock armed the capture, which nothing would replay (the
// zero-downtime test found such rows missing with eventual reads).
func (c *Copier) copyRange(ctx context.Context, src *milvus.Conn, col *milvus.Collection, r milvus.KeyRange, ts uint64, fresh bool, th *throttle, writes chan<- pageWrite) (int64, error) {
	pk := col.PrimaryField()
	fields := milvus.OutputFields(col)
	pageRows := c.cfg.PageRowsFor(col.Schema)
	if th != nil {
		pageRows = th.pageRows(pageRows, c.cfg.Readers)
	}
	var parts []string
	if r.Partition != "" {
		parts = []string{r.Partition}
	}
	var (
		pending  sync.WaitGroup
		mu       sync.Mutex
		rows     int64
		writeErr error
	)
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return writeErr
	}
	read := func() error {
		var cursor *string
		for {
			var page []*schemapb.FieldData
			err := c.cfg.Retry.Do(ctx, func(int) error {
				var err error
				page, err = src.QueryAt(ctx, col.Database, col.Name, r.Expr(pk, cursor), fields, parts, int64(pageRows), ts)
				return err
			})
			if err != nil {
				return err
			}
			n := milvus.Rows(page)
			if n == 0 {
				return nil
			}
			milvus.MarkDynamic(page)
			milvus.FitArrays(page, col.Schema)
			keys := milvus.KeysOf(milvus.Column(page, pk.GetName())).Strings()
			last := keys[len(keys)-1]
			after := cursor
			if after == nil {
				after = r.Gt
			}
			cursor = &last
			pending.Add(1)
			pw := pageWrite{ctx: ctx, col: col, part: r.Partition, cols: page, rows: n, fresh: fresh, done: func(err error) {
				mu.Lock()
				if err != nil && writeErr == nil {
					writeErr = err
				} else if err == nil {
					rows += int64(n)
				}
				mu.Unlock()
				pending.Done()
			}}
			select {
			case writes <- pw:
			case <-ctx.Done():
				pending.Done()
				return ctx.Err()
			}
			// The rows read are paid for before the next read: the rate
			// counts what the source served, not what was asked for.
			if th != nil {
				if err := th.wait(ctx, n); err != nil {
					return err
				}
			}
			// A page that ends on the range's upper bound ends the range:
			// no read of an empty page. A short page may not (see
			// milvus.LastPage).
			if err := failed(); err != nil || (r.Le != nil && last == *r.Le) {
				return err
			}
			var end bool
			if err := c.cfg.Retry.Do(ctx, func(int) (err error) {
				end, err = src.LastPage(ctx, col.Database, col.Name, pk, parts, after, last, n, int64(pageRows), ts)
				return err
			}); err != nil || end {
				return err
			}
		}
	}
	err := read()
	pending.Wait()
	if err == nil {
		err = failed()
	}
	return rows, err
}

// isCollectionGone reports that err came from a collection dropped on the
// source.
func isCollectionGone(ctx context.Context, c *milvus.Conn, db, name string, err error) bool {
	if err == nil || !errors.Is(err, milvus.ErrServer) {
		return false
	}
	has, herr := c.HasCollection(ctx, db, name)
	return herr == nil && !has
}
