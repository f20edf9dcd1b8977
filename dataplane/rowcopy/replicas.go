package rowcopy

import (
	"context"
	"fmt"

	"github.com/zdm-io/zdm/dataplane/milvus"
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
func (c *Copier) loadLikeSource(ctx context.Context, id string, src, dst *milvus.Conn, col *milvus.Collection) error {
	rep, err := src.Replicas(ctx, col.Database, col.Name)
	if err != nil {
		c.warn(ctx, id, fmt.Sprintf("%s is loaded on the target with the server's default replicas: the source's could not be read (%v); "+
			"load it there as on the source after the switch", col.Key(), err))
	}
	note, err := dst.LoadAs(ctx, col.Database, col.Name, nil, rep)
	if note != "" {
		c.warn(ctx, id, note)
	}
	return err
}
