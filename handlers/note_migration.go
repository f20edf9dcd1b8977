package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/zdm-io/zdm/domain"
)

// noteWithin bounds the recording of a note.
const noteWithin = 5 * time.Second

// NoteMigration records what the operator should know of a migration
// that did not stop it (see domain.Noted). The same note is recorded once,
// however often the data plane meets it; a migration that has ended takes
// none. It is bounded by noteWithin whatever ctx allows, and outlives a
// ctx cancelled sooner: the data plane notes from the path of its writes,
// which must not wait long on the event store.
func (s *Service) NoteMigration(ctx context.Context, id, note string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), noteWithin)
	defer cancel()
	sum := sha256.Sum256([]byte(note))
	_, err := s.Record(ctx, id, id+"/note/"+hex.EncodeToString(sum[:8]), domain.Note{Text: note})
	if errors.Is(err, domain.ErrTerminal) {
		return nil
	}
	return err
}
