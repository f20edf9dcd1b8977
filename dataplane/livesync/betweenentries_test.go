package livesync

import (
	"context"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/capture"
)

// The expiry sweep deletes rows from the target while no entry of their
// collection is applied. A collection that has no applier yet gets none
// while the deletion runs: one started meanwhile could apply a write of a
// key the deletion then removed, though the source holds it.
func TestNoApplierStartsForACollectionWhileARowDeletionRunsBetweenItsEntries(t *testing.T) {
	ctx := context.Background()
	a := NewApplier("m-1", emptyJournal{}, nil, nil, nil, false, func(string, string) bool { return true }, nil, nil)
	subject := capture.CollectionSubject("m-1", "d", "c")

	running, release := make(chan struct{}), make(chan struct{})
	ran := make(chan error, 1)
	go func() {
		_, err := a.betweenEntries(ctx, "d", "c", time.Second, func() error {
			close(running)
			<-release
			return nil
		})
		ran <- err
	}()
	<-running
	added := make(chan struct{})
	w := &applyWorker{}
	go func() { a.addWorker(subject, w); close(added) }()
	select {
	case <-added:
		t.Fatal("an applier started for the collection while a deletion ran between its entries")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	<-added
	if err := <-ran; err != nil {
		t.Fatal(err)
	}

	// Once it has one, the deletion waits for it to be between two
	// entries, and gives up when it is not in time.
	w.applying.Lock()
	done, err := a.betweenEntries(ctx, "d", "c", 50*time.Millisecond, func() error {
		t.Error("a deletion ran while the collection's applier applied an entry")
		return nil
	})
	if done || err != nil {
		t.Fatalf("betweenEntries with the applier busy: %v, %v; want false, nil", done, err)
	}
	w.applying.Unlock()
	if done, err := a.betweenEntries(ctx, "d", "c", 50*time.Millisecond, func() error { return nil }); !done || err != nil {
		t.Fatalf("betweenEntries with the applier between entries: %v, %v; want true, nil", done, err)
	}
}
