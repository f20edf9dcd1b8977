package service

import (
	"sync"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/projections"
)

// claim is which migration's target a cluster is, for its proxy's guard:
// asked on every write, it reads the registry again only after the
// registry changed, not a view decoded per write.
type claim struct {
	clusters *projections.Projection[*projections.ClusterView]
	id       string

	mu        sync.Mutex
	changed   <-chan struct{} // nil until read
	migration string
}

func (c *claim) by() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.changed != nil {
		select {
		case <-c.changed:
		default:
			return c.migration
		}
	}
	// Taken before the read: a change during it is read again next time.
	c.changed = c.clusters.Changed()
	c.migration = ""
	if v, ok := c.clusters.Get(c.id); ok && v.Status == domain.StatusSyncing {
		c.migration = v.MigrationID
	}
	return c.migration
}
