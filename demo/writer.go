package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
)

// writer is the demo's client: it writes through the proxy and keeps every
// acknowledged write in a file, one JSON line each.
type writer struct {
	path   string
	cancel context.CancelFunc
	done   chan struct{}
	stats  datatools.LoadStats
	err    error
}

func startWriter(ctx context.Context, proxy string, targets []datatools.CollectionName, rate float64, path string) (*writer, error) {
	c, err := milvus.Dial(ctx, milvus.Endpoint{Address: proxy})
	if err != nil {
		return nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &writer{path: path, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer f.Close()
		defer c.Close()
		w.stats, w.err = datatools.Load(wctx, c, datatools.LoadConfig{Targets: targets, Rate: rate, Mix: datatools.Mix{Insert: 60, Upsert: 25, Delete: 15}, Batch: 5, Workers: 4, Seed: 42}, f)
	}()
	return w, nil
}

func (w *writer) stop() (datatools.LoadStats, error) {
	w.cancel()
	<-w.done
	if w.err != nil && !errors.Is(w.err, context.Canceled) {
		return w.stats, fmt.Errorf("the client writer: %w", w.err)
	}
	return w.stats, nil
}

// acknowledged counts the writes the client journaled as acknowledged so
// far, from the file it writes one line per acknowledged write to.
func (w *writer) acknowledged() (int, error) {
	data, err := os.ReadFile(w.path)
	if err != nil {
		return 0, err
	}
	// A failed write is journaled too, marked unsure.
	return bytes.Count(data, []byte("\n")) - bytes.Count(data, []byte(`"unsure":true`)), nil
}
