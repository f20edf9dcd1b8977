// Package projections builds zdm's read models from events: the migration
// list and status, and the cluster registry. Views are stored with the last
// sequence they applied, so a redelivered event changes nothing, and can be
// rebuilt from the first event at any time.
package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/zdm-io/zdm/domain"
)

// ViewStore persists encoded views by ID.
type ViewStore interface {
	Put(ctx context.Context, key string, value []byte) error
	All(ctx context.Context) (map[string][]byte, error)
	Reset(ctx context.Context) error
}

// view is a read model of one aggregate.
type view interface {
	apply(domain.Record)
	lastSeq() uint64
}

// Projection keeps the views of one kind of aggregate in memory and in a
// ViewStore, fed by a durable consumer through Handle.
type Projection[V view] struct {
	store   ViewStore
	newView func(id string) V
	idOf    func(subject string) string

	mu      sync.RWMutex
	views   map[string]V
	encoded map[string][]byte
	changed chan struct{}
}

func newProjection[V view](store ViewStore, newView func(string) V) *Projection[V] {
	return &Projection[V]{
		store: store, newView: newView,
		idOf:  func(s string) string { return s[strings.LastIndexByte(s, '.')+1:] },
		views: map[string]V{}, encoded: map[string][]byte{}, changed: make(chan struct{}),
	}
}

// Load reads the stored views; call it before the consumer starts. A fresh
// consumer (fresh == true) starts from the first event, so the stored views
// are dropped and rebuilt.
func (p *Projection[V]) Load(ctx context.Context, fresh bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.views, p.encoded = map[string]V{}, map[string][]byte{}
	if fresh {
		return p.store.Reset(ctx)
	}
	all, err := p.store.All(ctx)
	if err != nil {
		return err
	}
	for id, data := range all {
		v := p.newView(id)
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("stored view %s: %w", id, err)
		}
		p.views[id], p.encoded[id] = v, data
	}
	return nil
}

// Handle applies the events of one stored message.
func (p *Projection[V]) Handle(ctx context.Context, subject string, records []domain.Record) error {
	if len(records) == 0 {
		return nil
	}
	id := p.idOf(subject)
	p.mu.RLock()
	v, ok := p.views[id]
	p.mu.RUnlock()
	if !ok {
		v = p.newView(id)
	}
	if records[0].Seq <= v.lastSeq() {
		return nil // redelivered after a crash before the ack
	}
	// Work on a copy so that a failed store leaves the served view as it was.
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	next := p.newView(id)
	if err := json.Unmarshal(data, &next); err != nil {
		return err
	}
	for _, r := range records {
		next.apply(r)
	}
	enc, err := json.Marshal(next)
	if err != nil {
		return err
	}
	if err := p.store.Put(ctx, id, enc); err != nil {
		return err
	}
	p.mu.Lock()
	p.views[id], p.encoded[id] = next, enc
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	return nil
}

// Get returns a copy of one view.
func (p *Projection[V]) Get(id string) (V, bool) {
	p.mu.RLock()
	data, ok := p.encoded[id]
	p.mu.RUnlock()
	v := p.newView(id)
	if !ok {
		return v, false
	}
	_ = json.Unmarshal(data, &v)
	return v, true
}

// List returns copies of all views, sorted by ID.
func (p *Projection[V]) List() []V {
	p.mu.RLock()
	ids := make([]string, 0, len(p.encoded))
	for id := range p.encoded {
		ids = append(ids, id)
	}
	p.mu.RUnlock()
	sort.Strings(ids)
	out := make([]V, 0, len(ids))
	for _, id := range ids {
		if v, ok := p.Get(id); ok {
			out = append(out, v)
		}
	}
	return out
}

// Wait blocks until the view of id has applied seq, or ctx ends. It lets a
// writer read its own write.
func (p *Projection[V]) Wait(ctx context.Context, id string, seq uint64) error {
	for {
		p.mu.RLock()
		v, ok := p.views[id]
		ch := p.changed
		p.mu.RUnlock()
		if ok && v.lastSeq() >= seq {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Changed returns a channel closed at the next change of any view.
func (p *Projection[V]) Changed() <-chan struct{} {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.changed
}

// NewMigrations returns the projection of migration statuses.
func NewMigrations(store ViewStore) *Projection[*MigrationView] {
	return newProjection(store, NewMigrationView)
}

// NewClusters returns the projection of the cluster registry.
func NewClusters(store ViewStore) *Projection[*ClusterView] {
	return newProjection(store, NewClusterView)
}
