package rowcopy

import (
	"context"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// loadLikeSource loads a copied collection on the target with as many
// replicas, in the same resource groups, as on the source: after the
// switch the target serves the queries the source did. A target that
// cannot is loaded with its defaults, and the log says so.
func (c *Copier) loadLikeSource(ctx context.Context, src, dst *milvus.Conn, col *milvus.Collection) error {
	rep, err := src.Replicas(ctx, col.Database, col.Name)
	if err != nil {
		c.logger.Warn("the source's replicas could not be read; the target loads the collection with its defaults",
			"collection", col.Key(), "err", err)
	}
	note, err := dst.LoadAs(ctx, col.Database, col.Name, nil, rep)
	if note != "" {
		c.logger.Warn(note, "collection", col.Key())
	}
	return err
}
