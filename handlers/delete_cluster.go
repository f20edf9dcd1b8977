package handlers

import (
	"context"

	"github.com/zdm-io/zdm/domain"
)

// DeleteCluster removes a cluster from the registry; a locked source or a
// migration's target stays (R5). Its credentials are erased.
func (s *Service) DeleteCluster(ctx context.Context, p domain.Principal, commandID, id string) (*domain.Cluster, error) {
	c, err := s.Cluster(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := p.AuthorizeOn("cluster", id, c.Organization, c.Project); err != nil {
		return nil, err
	}
	c, err = s.clusters.Exec(ctx, id, commandID, p.User, func(c *domain.Cluster) ([]domain.Event, error) {
		return c.Delete(p.User)
	})
	if err != nil {
		return nil, err
	}
	if s.creds != nil {
		return c, s.creds.Delete(ctx, id)
	}
	return c, nil
}
