package rowcopy

import (
	"context"
	"fmt"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/domain"
)

// Noter records what the operator should know of a migration.
type Noter interface {
	NoteMigration(ctx context.Context, id, note string) error
}

// NoteTo records, through n, what the target could not do as the source
// did in the status of the migration copied; the log says it either way.
func (c *Copier) NoteTo(n Noter) { c.notes = n }

// warn logs a note on migration id and records it in its status.
func (c *Copier) warn(ctx context.Context, id, note string) {
	c.logger.Warn(note, "migration", id)
	if c.notes == nil {
		return
	}
	if err := c.notes.NoteMigration(ctx, id, note); err != nil {
		c.logger.Warn("a note could not be recorded in the migration's status", "migration", id, "err", err)
	}
}

// loadLikeSource loads a copied collection on the target with as many
// replicas, in the same resource groups, as on the source: after the
// switch the target serves the queries the source did. A target that
// cannot is loaded with its defaults, and the migration's status says so.
// The load is only started (loaded waits for it).
func (c *Copier) loadLikeSource(ctx context.Context, id string, src, dst *milvus.Conn, col *milvus.Collection) error {
	rep, err := src.Replicas(ctx, col.Database, col.Name)
	if err != nil {
		c.warn(ctx, id, fmt.Sprintf("%s is loaded on the target with the server's default replicas: the source's could not be read (%v); "+
			"load it there as on the source after the switch", col.Key(), err))
	}
	note, err := dst.StartLoadAs(ctx, col.Database, col.Name, rep)
	if note != "" {
		c.warn(ctx, id, note)
	}
	return err
}

// startTargetLoad begins the target's load of a collection it has just
// made, still empty, with the source's replicas: the load goes on during
// the copy, and the end of the copy waits for it (loaded). Begun with the
// server's default, a source served by two replicas had one on the
// target, the end of the copy could not change it, and said the target
// could not load two.
func (r preparer) startTargetLoad(ctx context.Context, col *milvus.Collection) error {
	return r.c.loadLikeSource(ctx, r.m.ID, r.src, r.dst, col)
}

// finishStructure loads on the target what was loaded on the source,
// creates the aliases (after the data, so no client reaches a half-copied
// collection by its alias) and releases what the copy loaded. The loads,
// most of them begun as their collections were made, are waited for
// several at a time.
func (c *Copier) finishStructure(ctx context.Context, src, dst *milvus.Conn, m *domain.Migration, cols map[string]*milvus.Collection, ch choices) error {
	var planned []*milvus.Collection
	for _, p := range m.Collections {
		if col, ok := cols[p.Database+"/"+p.Collection]; ok {
			planned = append(planned, col)
		}
	}
	err := inParallel(ctx, planned, c.cfg.Planners, func(ctx context.Context, _ int, col *milvus.Collection) error {
		if ch.loadedForCopy[col.Key()] {
			return nil
		}
		return c.loaded(ctx, m.ID, src, dst, col)
	})
	if err != nil {
		return err
	}
	for _, col := range planned {
		for _, a := range col.Aliases {
			if err := dst.CreateAlias(ctx, col.Database, col.Name, a); err != nil {
				return err
			}
		}
		if ch.loadedForCopy[col.Key()] {
			if err := src.Release(ctx, col.Database, col.Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// loaded waits for the target to serve a copied collection whole: one
// whose load began as it was made (prepare) is waited for, any other (a
// segment copy's) is loaded now, like the source.
func (c *Copier) loaded(ctx context.Context, id string, src, dst *milvus.Conn, col *milvus.Collection) error {
	state, err := dst.LoadState(ctx, col.Database, col.Name)
	if err == nil && state == commonpb.LoadState_LoadStateNotLoad {
		err = c.loadLikeSource(ctx, id, src, dst, col)
	}
	if err != nil {
		return err
	}
	return dst.WaitLoaded(ctx, col.Database, col.Name)
}
