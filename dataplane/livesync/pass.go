package livesync

import (
	"context"
	"time"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/milvus"
)

// A write slow at the source would hold back every later write of its
// collection while it waits for its outcome. Writes whose rows cannot
// meet commute, so an entry ready behind a waiting one is applied at once
// when nothing still waiting before it may touch a row it touches. The
// capture sends writes of overlapping keys one at a time (its key claims),
// so the journal holds them in the source's order, and the check below
// keeps that order on the target. The position recorded never passes the
// first entry still waiting: a reader that starts again from it applies
// the entries it passed again, in the journal's order, which ends the same.

// span is what a journaled write may touch of its collection.
type span struct {
	whole bool // any row: DDL, a delete by a filter, keys not known
	// fresh is an insert whose keys the source assigns: its rows are new,
	// and no write before it touches them.
	fresh bool
	keys  []string // with fresh, the keys the source gave, once known
}

// spanOf tells what an entry touches (nil: every entry waits in order).
type spanOf func(e capture.Entry) span

// blocked is what the entries still waiting may touch.
type blocked struct {
	whole bool
	// unknown: an insert waiting whose keys the source is still to give;
	// a write by key may name one of them, once its client got them.
	unknown bool
	keys    map[string]bool
}

func (b *blocked) add(s span) {
	b.whole = b.whole || s.whole
	b.unknown = b.unknown || s.fresh && len(s.keys) == 0
	if b.keys == nil {
		b.keys = map[string]bool{}
	}
	for _, k := range s.keys {
		b.keys[k] = true
	}
}

// lets reports whether a write spanning s may be applied before the
// entries waiting.
func (b *blocked) lets(s span) bool {
	if s.whole || b.whole || b.unknown && !s.fresh {
		return false
	}
	for _, k := range s.keys {
		if b.keys[k] {
			return false
		}
	}
	return true
}

// pass takes from the queue, after its first waiting write, every entry
// that may be applied before what waits ahead of it.
func (o *outcomes) pass() []ready {
	if o.spanOf == nil || !o.passable() {
		return nil
	}
	var b blocked
	var out []ready
	kept := o.queue[:0]
	for _, w := range o.queue {
		if w.resolved && (w.skip || b.lets(o.spanOfWaiting(w))) {
			delete(o.byTok, w.token)
			out = append(out, w.ready)
			continue
		}
		b.add(o.spanOfWaiting(w))
		kept = append(kept, w)
	}
	clear(o.queue[len(kept):])
	o.queue = kept
	return out
}

// passable reports whether an entry ready waits behind one that is not.
func (o *outcomes) passable() bool {
	if len(o.queue) < 2 {
		return false
	}
	for _, w := range o.queue[1:] {
		if w.resolved {
			return true
		}
	}
	return false
}

func (o *outcomes) spanOfWaiting(w *waiting) span {
	if w.span == nil {
		s := o.spanOf(w.e)
		w.span = &s
	}
	return *w.span
}

// oldest is the commit time of the oldest entry in the queue the source
// committed (zero: none). A write still waiting for its outcome is not
// counted: the source may not have it yet, as before it answered.
func (o *outcomes) oldest() time.Time {
	var t time.Time
	if o == nil {
		return t
	}
	for _, w := range o.queue {
		if w.resolved && !w.skip {
			t = earliest(t, w.e.CommitTime())
		}
	}
	return t
}

// earliest is the earlier of two times, zero standing for none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// spanOf reads what an entry of w's collection touches by the key field
// of the target's collection.
func (a *Applier) spanOf(ctx context.Context, w *applyWorker) spanOf {
	return func(e capture.Entry) span {
		whole := span{whole: true}
		if e.Op != capture.OpInsert && e.Op != capture.OpUpsert && e.Op != capture.OpDelete {
			return whole
		}
		if err := a.keyField(ctx, w, e); err != nil {
			return whole
		}
		msg, _ := milvus.DecodeRequest(e.Method, e.Request)
		keys, ok := milvus.WrittenKeys(msg, w.pk.GetName())
		switch {
		case !ok:
			return whole
		case keys.Len() > 0:
			return span{keys: keys.Strings()}
		case e.Op == capture.OpInsert:
			s := span{fresh: true}
			if e.IDs != nil {
				s.keys = e.IDs.Strings()
			}
			return s
		}
		return whole
	}
}
