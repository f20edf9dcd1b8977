package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// errWatchStopped is a watch whose server side went away.
var errWatchStopped = errors.New("the watch stopped")

// each calls fn with every entry w gives (not the marker that the values
// there were all sent) until ctx ends, or w stops (errWatchStopped); it
// stops w.
func each(ctx context.Context, w jetstream.KeyWatcher, fn func(jetstream.KeyValueEntry)) error {
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errWatchStopped
			}
			if e != nil {
				fn(e)
			}
		}
	}
}

// sighting is a revision of the lease's value and when this process
// first saw it.
type sighting struct {
	rev uint64
	at  time.Time
}

// of is s after seeing rev (0: nothing seen); revisions only grow, and a
// read that returns an older one than a watch did is behind it.
func (s sighting) of(rev uint64) sighting {
	if rev > s.rev {
		return sighting{rev: rev, at: time.Now()}
	}
	return s
}

// watch sends the revision of each write of the lease's key as it is
// stored, 0 for a deletion, until ctx ends; nil if the watch cannot start
// (the polls alone see the writes then).
func (l *Lease) watch(ctx context.Context) <-chan uint64 {
	w, err := l.kv.Watch(ctx, l.key)
	if err != nil {
		return nil
	}
	out := make(chan uint64, 8)
	go func() {
		defer close(out)
		_ = each(ctx, w, func(e jetstream.KeyValueEntry) {
			rev := e.Revision()
			if e.Operation() != jetstream.KeyValuePut {
				rev = 0
			}
			select {
			case out <- rev:
			case <-ctx.Done():
			}
		})
	}()
	return out
}

// Follow calls seen with the lease's value each time one is written, and
// with an empty one when it is deleted, until ctx ends or the watch
// stops. A value the server forgot (its holder dead, no other took it
// yet) is not told: it stays until the next holder's write.
func (l *Lease) Follow(ctx context.Context, seen func(LeaseValue)) error {
	w, err := l.kv.Watch(ctx, l.key)
	if err != nil {
		return fmt.Errorf("lease %s: %w", l.key, err)
	}
	err = each(ctx, w, func(e jetstream.KeyValueEntry) {
		var v LeaseValue
		if e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &v) != nil {
			return
		}
		v.Revision = e.Revision()
		seen(v)
	})
	if err != nil {
		return fmt.Errorf("lease %s: %w", l.key, err)
	}
	return nil
}
