package handlers

import (
	"context"

	"github.com/zdm-io/zdm/domain"
)

// StopSync is the operator's confirmed stop of the sync (R9).
type StopSync struct {
	ConfirmWritesStopped bool
	Force                bool
}

// StopSync records the stop; the saga then drains and switches.
func (s *Service) StopSync(ctx context.Context, p domain.Principal, commandID, id string, r StopSync) (*domain.Migration, error) {
	if err := s.authorizeMigration(ctx, p, id); err != nil {
		return nil, err
	}
	return s.exec(ctx, id, commandID, p.User, domain.StopSync{
		ConfirmWritesStopped: r.ConfirmWritesStopped, Force: r.Force, Actor: p.User, Now: s.clock.Now(),
	})
}

// authorizeMigration checks that p may drive migration id (R12).
func (s *Service) authorizeMigration(ctx context.Context, p domain.Principal, id string) error {
	m, err := s.migrations.Get(ctx, id)
	if err != nil {
		return err
	}
	return p.AuthorizeOn("migration", id, m.Organization, m.Source.Project)
}
