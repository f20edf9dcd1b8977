package handlers

import (
	"context"
	"errors"

	"github.com/zdm-io/zdm/domain"
)

// FailMigration ends a migration for a reason found by the data plane (a
// forbidden operation, a change around the proxy). A migration that has
// already ended stays as it is.
func (s *Service) FailMigration(ctx context.Context, id, reason, detail string) error {
	_, err := s.Record(ctx, id, id+"/failed", domain.Fail{Reason: reason, Detail: detail})
	if errors.Is(err, domain.ErrTerminal) {
		return nil
	}
	return err
}
