package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
)

// writer is a client writing continuously through an endpoint, keeping
// every acknowledged write for the check.
type writer struct {
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	journal bytes.Buffer
	stats   datatools.LoadStats
	err     error
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func startWriter(t *testing.T, endpoint string, targets []datatools.CollectionName, rate float64) *writer {
	return startLoad(t, endpoint, datatools.LoadConfig{Targets: targets, Rate: rate})
}

// startRetryingWriter is startWriter of a client that sends a write that
// failed with UNAVAILABLE once more, as the SDKs do.
func startRetryingWriter(t *testing.T, endpoint string, targets []datatools.CollectionName, rate float64) *writer {
	return startLoad(t, endpoint, datatools.LoadConfig{Targets: targets, Rate: rate, Retry: true})
}

// startLoad starts a writer of cfg's targets, rate and retry: 5 rows per
// insert, 4 workers, inserts, upserts and deletes 60:25:15.
func startLoad(t *testing.T, endpoint string, cfg datatools.LoadConfig) *writer {
	// A proxy registered a moment ago listens once zdmd has projected
	// the registration.
	if err := milvus.WaitAnswer(context.Background(), endpoint, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	c := milvustest.Dial(t, endpoint)
	ctx, cancel := context.WithCancel(context.Background())
	w := &writer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		cfg.Mix, cfg.Batch, cfg.Workers, cfg.Seed = datatools.Mix{Insert: 60, Upsert: 25, Delete: 15}, 5, 4, uint64(time.Now().UnixNano())
		st, err := datatools.Load(ctx, c, cfg, lockedWriter{&w.mu, &w.journal})
		w.stats, w.err = st, err
	}()
	t.Cleanup(func() { w.cancel(); <-w.done })
	return w
}

// stop ends the writer and returns its statistics.
func (w *writer) stop(t *testing.T) datatools.LoadStats {
	w.cancel()
	<-w.done
	if w.err != nil {
		t.Fatal(w.err)
	}
	return w.stats
}

// journalBytes is a copy of what the writer journaled so far.
func (w *writer) journalBytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]byte(nil), w.journal.Bytes()...)
}

// check proves every acknowledged write is on the cluster at addr.
func (w *writer) check(t *testing.T, addr string) datatools.CheckReport {
	data := w.journalBytes()
	rep, err := datatools.Check(context.Background(), milvustest.Dial(t, addr), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Acknowledged == 0 {
		t.Fatalf("check against %s: %s %v", addr, rep, rep.Examples)
	}
	return rep
}

// ackedSince counts the writes acknowledged after since.
func (w *writer) ackedSince(since time.Time) int {
	n := 0
	for _, line := range bytes.Split(w.journalBytes(), []byte("\n")) {
		var a datatools.Ack
		if json.Unmarshal(line, &a) == nil && !a.Unsure && a.At.After(since) {
			n++
		}
	}
	return n
}
