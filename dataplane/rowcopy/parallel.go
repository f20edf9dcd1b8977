package rowcopy

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// inParallel calls fn for each item, at most n at a time, until the first
// error, which cancels the ctx the others run with and is returned.
// Items left once ctx ends are not started.
func inParallel[T any](ctx context.Context, items []T, n int, fn func(ctx context.Context, i int, item T) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(n, 1))
	for i, item := range items {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, i, item) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err() // items skipped once ctx ended are not done
}
