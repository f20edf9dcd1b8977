package handlers

import (
	"context"

	"github.com/zdm-io/zdm/domain"
)

// ListenIndex knows the proxy addresses of the registered clusters.
type ListenIndex interface {
	// ListenHolder returns the cluster other than except whose
	// proxy_listen contends with listen (domain.SameListen), and its
	// organization; "" if none.
	ListenHolder(listen, except string) (id, org string)
}

// freeListen refuses listen when another cluster than except has it; the
// holder is named to a caller of its organization (org).
func (s *Service) freeListen(listen, except, org string) error {
	if listen == "" || s.listens == nil {
		return nil
	}
	id, holderOrg := s.listens.ListenHolder(listen, except)
	if id == "" {
		return nil
	}
	if holderOrg != org {
		id = ""
	}
	return &domain.ListenTakenError{Listen: listen, Holder: id}
}

// EndpointIndex knows which registered clusters are one Milvus.
type EndpointIndex interface {
	// EndpointTwins returns the clusters other than except registered
	// with the Milvus endpoint endpoint, deleted ones left out.
	EndpointTwins(endpoint, except string) []string
	// SeenCluster waits until the index has taken in cluster id's events
	// up to stream sequence seq, and with them every cluster event stored
	// before it: the registrations made before a lock are then known.
	SeenCluster(ctx context.Context, id string, seq uint64) error
}

// ClusterIndex knows the registered clusters' proxy addresses and
// endpoints.
type ClusterIndex interface {
	ListenIndex
	EndpointIndex
}

// CheckClustersWith has registrations and updates refuse a proxy_listen
// another cluster's proxy has, and a migration's start a source whose
// Milvus, registered again under another ID, a running migration holds:
// the lock is the registration's, and two migrations of one Milvus would
// each capture only part of its writes.
func (s *Service) CheckClustersWith(ix ClusterIndex) { s.listens, s.endpoints = ix, ix }
