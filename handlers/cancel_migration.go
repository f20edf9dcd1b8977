package handlers

import (
	"context"

	"github.com/zdm-io/zdm/domain"
)

// CancelMigration ends a running migration; the saga then disarms the
// capture, releases the target and unlocks the source. Cancelling a
// cancelled migration succeeds and changes nothing.
func (s *Service) CancelMigration(ctx context.Context, p domain.Principal, commandID, id string) (*domain.Migration, error) {
	if err := s.authorizeMigration(ctx, p, id); err != nil {
		return nil, err
	}
	return s.exec(ctx, id, commandID, p.User, domain.Cancel{Actor: p.User})
}
