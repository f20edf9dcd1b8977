package capture

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// The source orders the writes it commits by their timestamps, and the
// last write of a key decides what the key holds. The proxy journals a
// write when its answer comes back, and answers to writes in flight at
// once come back, and are journaled, in any order. For writes of different
// keys the order does not matter: replayed in any order, they leave the
// same rows. For two writes of the same key it does. So the capture never
// lets two writes that may touch a common key be in flight at once: the
// later one waits, before it is forwarded, until the earlier one is
// journaled. The journal then holds them in the order the source committed
// them.

// keyClaim is what a write touches in one collection: its primary keys,
// or the whole collection when they are not known before the source
// answers (a delete by expression, DDL, a write whose key field is not
// known).
type keyClaim struct {
	subject string
	ints    []int64
	strs    []string
	whole   bool

	granted chan struct{}
}

// keySet counts the claims on each key of one collection.
type keySet struct {
	ints   map[int64]int
	strs   map[string]int
	claims int // every claim, with keys or not
	whole  int // claims of the whole collection
}

func newKeySet() *keySet { return &keySet{ints: map[int64]int{}, strs: map[string]int{}} }

func (s *keySet) add(c *keyClaim, n int) {
	for _, k := range c.ints {
		if s.ints[k] += n; s.ints[k] == 0 {
			delete(s.ints, k)
		}
	}
	for _, k := range c.strs {
		if s.strs[k] += n; s.strs[k] == 0 {
			delete(s.strs, k)
		}
	}
	s.claims += n
	if c.whole {
		s.whole += n
	}
}

// overlaps reports whether c may touch a key a claim in s touches.
func (s *keySet) overlaps(c *keyClaim) bool {
	if s.claims == 0 {
		return false
	}
	if c.whole || s.whole > 0 {
		return true
	}
	for _, k := range c.ints {
		if s.ints[k] > 0 {
			return true
		}
	}
	for _, k := range c.strs {
		if s.strs[k] > 0 {
			return true
		}
	}
	return false
}

// keyOrder grants claims so that overlapping ones are held one at a time,
// in the order they were asked for.
type keyOrder struct {
	mu       sync.Mutex
	subjects map[string]*subjectClaims
	// waits and waited count the claims that had to wait, and how long.
	waits  atomic.Uint64
	waited atomic.Int64 // nanoseconds
}

type subjectClaims struct {
	held    *keySet
	queued  *keySet
	waiting []*keyClaim // in the order asked
}

func newKeyOrder() *keyOrder { return &keyOrder{subjects: map[string]*subjectClaims{}} }

// acquire returns once c overlaps no claim held or asked for before it,
// or with ctx's error (c is then not held).
func (o *keyOrder) acquire(ctx context.Context, c *keyClaim) error {
	o.mu.Lock()
	s := o.subjects[c.subject]
	if s == nil {
		s = &subjectClaims{held: newKeySet(), queued: newKeySet()}
		o.subjects[c.subject] = s
	}
	if !s.held.overlaps(c) && !s.queued.overlaps(c) {
		s.held.add(c, 1)
		o.mu.Unlock()
		return nil
	}
	c.granted = make(chan struct{})
	s.waiting = append(s.waiting, c)
	s.queued.add(c, 1)
	o.mu.Unlock()
	began := time.Now()
	defer func() {
		o.waits.Add(1)
		o.waited.Add(int64(time.Since(began)))
	}()
	select {
	case <-c.granted:
		return nil
	case <-ctx.Done():
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	select {
	case <-c.granted: // granted meanwhile: give it back
		o.releaseLocked(c)
	default:
		for i, w := range s.waiting {
			if w == c {
				s.waiting = append(s.waiting[:i], s.waiting[i+1:]...)
				break
			}
		}
		s.queued.add(c, -1)
		o.grantLocked(c.subject, s)
	}
	return ctx.Err()
}

// release gives up a held claim (nil: none) and grants the waiting ones
// it blocked.
func (o *keyOrder) release(c *keyClaim) {
	if c == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.releaseLocked(c)
}

func (o *keyOrder) releaseLocked(c *keyClaim) {
	s := o.subjects[c.subject]
	s.held.add(c, -1)
	o.grantLocked(c.subject, s)
}

// grantLocked grants, in order, every waiting claim that overlaps neither
// a held claim nor one still waiting before it.
func (o *keyOrder) grantLocked(subject string, s *subjectClaims) {
	if len(s.waiting) == 0 {
		if s.held.claims == 0 {
			delete(o.subjects, subject)
		}
		return
	}
	before := newKeySet()
	left := s.waiting[:0]
	for _, w := range s.waiting {
		if s.held.overlaps(w) || before.overlaps(w) {
			before.add(w, 1)
			left = append(left, w)
			continue
		}
		s.queued.add(w, -1)
		s.held.add(w, 1)
		close(w.granted)
	}
	clear(s.waiting[len(left):])
	s.waiting = left
}
