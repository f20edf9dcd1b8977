package handlers

import (
	"context"

	"github.com/zdm-io/zdm/domain"
)

// SetCopyRateLimit changes the rows per second the row copy reads (0:
// no limit) until the copy ends; the copier follows it within a second.
func (s *Service) SetCopyRateLimit(ctx context.Context, p domain.Principal, commandID, id string, rowsPerSecond int64) (*domain.Migration, error) {
	if err := s.authorizeMigration(ctx, p, id); err != nil {
		return nil, err
	}
	return s.exec(ctx, id, commandID, p.User, domain.SetCopyRateLimit{RowsPerSecond: rowsPerSecond, Actor: p.User})
}
