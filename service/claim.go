package service

import (
	"sync"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/projections"
)

// claim is which migration's target a cluster's Milvus is, for its
// proxy's guard: the cluster's own registration, or another of the same
// endpoint (one Milvus registered twice, once as a migration's target).
// Asked on every write, it reads the registry again only after the
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
	own, ok := c.clusters.Get(c.id)
	if !ok {
		return ""
	}
	// The cluster's own registration is one of those of its Milvus.
	for _, v := range c.clusters.List() {
		if !v.Deleted && v.Status == domain.StatusSyncing && sameMilvus(v.Endpoint, own.Endpoint) {
			c.migration = v.MigrationID
			break
		}
	}
	return c.migration
}
