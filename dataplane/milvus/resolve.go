package milvus

import (
	"context"

	"github.com/zdm-io/zdm/domain"
)

// Resolver finds a registered cluster's endpoint and credentials.
type Resolver interface {
	Endpoint(ctx context.Context, clusterID string) (Endpoint, error)
}

// Connect dials a cluster of the registry.
func Connect(ctx context.Context, r Resolver, clusterID, role string) (*Conn, error) {
	ep, err := r.Endpoint(ctx, clusterID)
	if err != nil {
		return nil, err
	}
	c, err := Dial(ctx, ep)
	if err != nil {
		return nil, &domain.StepError{Reason: role + "_unreachable", Err: err}
	}
	return c, nil
}
