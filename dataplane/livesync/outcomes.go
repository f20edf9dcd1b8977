package livesync

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/milvus"
)

// OutcomeSource is the capture that journals a migration's writes while
// this process drives it (a *capture.Capture).
type OutcomeSource interface {
	// Mine reports whether a write's token is the capture's.
	Mine(token string) bool
	// Outcome is the outcome of one of its writes not yet journaled.
	Outcome(token string) (capture.Resolved, bool)
}

// A write journaled first (capture's outcome.go) is applied once its
// outcome is read: entries behind it in its subject wait with it, so the
// target sees them in the journal's order. outcomes keeps that queue for
// one subject's reader.

// ready is a journal entry the applier may apply, and the position to
// record once it is (the last entry read when nothing waits behind it).
type ready struct {
	seq  uint64
	e    capture.Entry
	data []byte // the entry as journaled (as resolved, for an uncertain write)
	skip bool   // nothing to apply: refused, or never sent
}

type waiting struct {
	ready
	token    string
	resolved bool
	// span is what it touches, read when first asked for (resolve drops
	// it: the keys may come with the outcome).
	span *span
	// until is, for a write of another process, the sequence by which its
	// outcome is in the journal if it ever is: that process is gone.
	until uint64
}

type outcomes struct {
	// src is the capture that still runs, whose outcomes are still to
	// come (nil: every write's is).
	src   OutcomeSource
	queue []*waiting
	byTok map[string]*waiting
	// spanOf lets entries pass the writes waiting (see pass.go).
	spanOf spanOf

	mu sync.Mutex
	// stalled is the token of the capture's write at the head of the
	// queue, and since when it is there (see overdue).
	stalled      string
	stalledSince time.Time
}

func newOutcomes(src OutcomeSource) *outcomes {
	return &outcomes{src: src, byTok: map[string]*waiting{}}
}

// foreign reports whether e is a write journaled first by a capture that
// no longer runs: its outcome is in the journal by now, or never will be.
func (o *outcomes) foreign(e capture.Entry) bool {
	return e.Op != capture.OpOutcome && e.Pending && o.src != nil && !o.src.Mine(e.Intent)
}

// read takes the entry at seq and returns those now ready, in the
// journal's order. For a foreign write, last is the sequence of the
// subject's last entry when it was read: its outcome is at or before it.
func (o *outcomes) read(seq uint64, e capture.Entry, data []byte, last uint64) []ready {
	for _, r := range e.Resolutions() {
		// Earlier writes' outcomes, carried by this entry. One of no
		// write waiting: its write was applied before the position this
		// reader started from, or this outcome is a second.
		if w := o.byTok[r.Intent]; w != nil && !w.resolved {
			w.resolve(r)
		}
	}
	switch {
	case e.Op == capture.OpOutcome:
	case e.Pending:
		w := &waiting{ready: ready{seq: seq, e: e, data: data}, token: e.Intent}
		switch {
		case o.src == nil:
		case o.foreign(e):
			w.until = max(last, seq)
		default:
			if out, ok := o.src.Outcome(e.Intent); ok {
				w.resolve(out)
			}
		}
		o.queue = append(o.queue, w)
		o.byTok[e.Intent] = w
	default:
		o.queue = append(o.queue, &waiting{ready: ready{seq: seq, e: e, data: data}, resolved: true})
	}
	for _, w := range o.queue {
		if !w.resolved && w.until > 0 && seq >= w.until {
			// Its zdmd died before journaling the outcome (or it is not
			// in the journal yet, and will be ignored): the source knows.
			w.resolve(capture.Resolved{Outcome: capture.OutcomeUnknown})
		}
	}
	var out []ready
	for len(o.queue) > 0 && o.queue[0].resolved {
		w := o.queue[0]
		o.queue = o.queue[1:]
		delete(o.byTok, w.token)
		out = append(out, w.ready)
	}
	passed := o.pass()
	o.watch()
	if len(o.queue) > 0 {
		// Applied before a write still waiting, they record no position
		// past it.
		for i := range passed {
			passed[i].seq = o.queue[0].seq - 1
		}
		return append(out, passed...)
	}
	if n := len(out); n > 0 {
		out[n-1].seq = seq
	} else {
		// Only outcomes were read: the position moves past them.
		out = append(out, ready{seq: seq, skip: true})
	}
	return out
}

// watch notes which of the capture's writes heads the queue, and since
// when.
func (o *outcomes) watch() {
	tok := ""
	if len(o.queue) > 0 && o.queue[0].until == 0 {
		tok = o.queue[0].token
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if tok != o.stalled {
		o.stalled, o.stalledSince = tok, time.Now()
	}
}

// overdue reports whether the capture's write at the head of the queue
// waited longer than d for its outcome while the capture has it: its
// entry did not land (a full store takes no more), and the reader reads
// again to apply the write by the capture's word.
func (o *outcomes) overdue(d time.Duration) bool {
	o.mu.Lock()
	tok, since := o.stalled, o.stalledSince
	o.mu.Unlock()
	if tok == "" || o.src == nil || time.Since(since) < d {
		return false
	}
	_, ok := o.src.Outcome(tok)
	return ok
}

// resolve makes a pending write ready by its outcome.
func (w *waiting) resolve(out capture.Resolved) {
	w.resolved, w.span = true, nil
	e := w.e
	e.Pending = false
	switch out.Outcome {
	case capture.OutcomeApplied:
		e.Timestamp, e.IDs = out.Timestamp, out.IDs
		w.e = e
		return
	case capture.OutcomeRefused, capture.OutcomeUnsent:
		w.skip = true
		return
	}
	// Unknown: the source's rows of its keys are copied, as for any
	// uncertain write; only its keys are kept for that.
	// The outcomes of other writes it carried were read with it.
	e.Op, e.Outcomes = capture.OpUncertain, nil
	if _, keys := milvus.DecodeRequest(e.Method, e.Request); keys != nil {
		e.Request = keys
	}
	w.e, w.data = e, e.Marshal()
}

// outcomeOverdue is how long the capture's write at the head of a subject
// waits for its outcome's entry before it is applied by the capture's
// word: an outcome lands within milliseconds unless the store is full.
const outcomeOverdue = 2 * time.Second

// rewindWhenOverdue ends the reading (rewind) once the capture's write at
// the head of queue is overdue, and reports whether it did.
func (a *Applier) rewindWhenOverdue(ctx context.Context, queue *outcomes, rewind context.CancelFunc) *atomic.Bool {
	rewound := &atomic.Bool{}
	if a.outcomes == nil {
		return rewound
	}
	go func() {
		tick := time.NewTicker(outcomeOverdue / 4)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if queue.overdue(outcomeOverdue) {
					rewound.Store(true)
					rewind()
					return
				}
			}
		}
	}()
	return rewound
}
