package livesync

import (
	"context"
	"sync"

	"github.com/zdm-io/zdm/dataplane/capture"
)

// The switch's check while writes are held reads, of a collection whose
// source holds keys twice, only the keys written since the check before
// the hold (verify/heldkeys.go). The applier knows them: while a switch
// runs it records the keys of every entry it applies.

// watchedKeysMax bounds the keys recorded per collection, and
// watchedKeysAll those of every collection together; past them the keys
// are not known, and the check walks them.
const (
	watchedKeysMax = 100_000
	watchedKeysAll = 1_000_000
)

type keyWatch struct {
	mu    sync.Mutex
	colls map[[2]string]*watchedColl
	keys  int
	// over: past watchedKeysAll, no collection's keys are known.
	over bool
}

type watchedColl struct {
	writes []watchedWrite
	keys   int
	// whole: a write whose keys are not known (DDL, a delete by a filter,
	// a repaired write), or too many keys.
	whole bool
}

type watchedWrite struct {
	seq  uint64
	keys []string
}

// WatchKeys starts recording the keys applied entries write; stop ends it.
func (a *Applier) WatchKeys() (stop func()) {
	w := &keyWatch{colls: map[[2]string]*watchedColl{}}
	a.watch.Store(w)
	return func() { a.watch.CompareAndSwap(w, nil) }
}

// WrittenAfter returns, for a collection, the keys the entries after seq
// wrote that were applied since WatchKeys (ok false: not known).
func (a *Applier) WrittenAfter(seq uint64) func(db, coll string) (keys []string, ok bool) {
	w := a.watch.Load()
	return func(db, coll string) ([]string, bool) {
		if w == nil {
			return nil, false
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.over {
			return nil, false
		}
		c := w.colls[[2]string{db, coll}]
		if c == nil {
			return nil, true
		}
		if c.whole {
			return nil, false
		}
		var keys []string
		for _, wr := range c.writes {
			if wr.seq > seq {
				keys = append(keys, wr.keys...)
			}
		}
		return keys, true
	}
}

// watchWrite records what entry seq writes, if a switch watches: rows
// are its rows when it is an insert or an upsert.
func (a *Applier) watchWrite(ctx context.Context, w *applyWorker, seq uint64, e capture.Entry, rows *rowSet) {
	kw := a.watch.Load()
	if kw == nil || e.Op == capture.OpHeartbeat || e.Op == capture.OpOutcome {
		return
	}
	var keys []string
	whole := true
	switch {
	case rows != nil:
		keys, whole = rows.keys, false
	case e.Op == capture.OpDelete:
		s := a.spanOf(ctx, w)(e)
		keys, whole = s.keys, s.whole || s.fresh
	}
	kw.mu.Lock()
	defer kw.mu.Unlock()
	if kw.over {
		return
	}
	if kw.keys += len(keys); kw.keys > watchedKeysAll {
		kw.over, kw.colls = true, nil
		return
	}
	k := [2]string{e.Database, e.Collection}
	c := kw.colls[k]
	if c == nil {
		c = &watchedColl{}
		kw.colls[k] = c
	}
	if c.whole {
		return
	}
	c.keys += len(keys)
	if whole || c.keys > watchedKeysMax {
		c.whole, c.writes = true, nil
		return
	}
	c.writes = append(c.writes, watchedWrite{seq: seq, keys: keys})
}
