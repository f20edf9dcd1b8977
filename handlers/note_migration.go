package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"github.com/zdm-io/zdm/domain"
)

// NoteMigration records what the operator should know of a migration
// that did not stop it (see domain.Noted). The same note is recorded once,
// however often the data plane meets it; a migration that has ended takes
// none.
func (s *Service) NoteMigration(ctx context.Context, id, note string) error {
	sum := sha256.Sum256([]byte(note))
	_, err := s.Record(ctx, id, id+"/note/"+hex.EncodeToString(sum[:8]), domain.Note{Text: note})
	if errors.Is(err, domain.ErrTerminal) {
		return nil
	}
	return err
}
