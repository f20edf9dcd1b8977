// Package viewstest gives tests a projection's view store in memory.
package viewstest

import (
	"context"
	"maps"
	"sync"
)

// Mem is a view store (projections.ViewStore) in memory.
type Mem struct {
	mu sync.Mutex
	m  map[string][]byte
}

// New returns an empty store.
func New() *Mem { return &Mem{m: map[string][]byte{}} }

// Put keeps a view.
func (s *Mem) Put(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = value
	return nil
}

// All returns a copy of every view kept.
func (s *Mem) All(context.Context) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m), nil
}

// Reset keeps the views: a test's store is never rebuilt.
func (s *Mem) Reset(context.Context) error { return nil }
