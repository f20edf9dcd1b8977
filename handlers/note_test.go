package handlers_test

import (
	"context"
	"slices"
	"testing"

	"github.com/zdm-io/zdm/handlers"
)

// The data plane notes the same fault as often as it meets it; the
// migration records it once, and an ended migration takes no note.
func TestANoteIsRecordedOnceAndNotAfterTheEnd(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, handlers.Steps{})
	id := h.start(t, "local", "1h")
	for _, note := range []string{"a/b is loaded with 1 replica", "a/b is loaded with 1 replica", "role r is not given"} {
		if err := h.svc.NoteMigration(ctx, id, note); err != nil {
			t.Fatal(err)
		}
	}
	m, err := h.svc.Migration(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a/b is loaded with 1 replica", "role r is not given"}; !slices.Equal(m.Notes, want) {
		t.Fatalf("notes %q, want %q", m.Notes, want)
	}
	if _, err := h.svc.CancelMigration(ctx, admin, "cancel-1", id); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.NoteMigration(ctx, id, "late"); err != nil {
		t.Fatalf("a note on an ended migration: %v", err)
	}
	if m, _ = h.svc.Migration(ctx, id); len(m.Notes) != 2 {
		t.Fatalf("notes after the end: %q", m.Notes)
	}
}
