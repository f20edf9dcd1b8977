package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/zdm-io/zdm/dataplane/capture"
)

// recordedJournal is a capture's journal that notes when each append
// began and how large it was, so that JetStream alone can be given the
// same messages at the same moments.
type recordedJournal struct {
	capture.JournalLog
	mu      sync.Mutex
	began   time.Time
	appends []recordedAppend
}

type recordedAppend struct {
	at   time.Duration // since the recording began
	size int
}

func (j *recordedJournal) Append(ctx context.Context, subject string, data []byte, id string) (uint64, error) {
	j.mu.Lock()
	if !j.began.IsZero() {
		j.appends = append(j.appends, recordedAppend{at: time.Since(j.began), size: len(data)})
	}
	j.mu.Unlock()
	return j.JournalLog.Append(ctx, subject, data, id)
}

// record starts a recording afresh.
func (j *recordedJournal) record() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.began, j.appends = time.Now(), nil
}

// recorded ends the recording and returns it.
func (j *recordedJournal) recorded() []recordedAppend {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.began = time.Time{}
	return j.appends
}

// journalAlone publishes to s's journal, with no proxy and no Milvus, the
// appends a capture made (as many messages, each of the same size, each
// at the same moment, so as many at once): what JetStream itself spends
// to keep those bytes on as many replicas, the floor of any capture that
// journals every write it lets through. It returns the CPU this process
// (the publishers, and with one replica the embedded server) and every
// NATS server outside it spent.
func journalAlone(ctx context.Context, s journalSetup, subject string, appends []recordedAppend) time.Duration {
	largest := 0
	for _, a := range appends {
		largest = max(largest, a.size)
	}
	// Vectors do not compress, nor do these bytes.
	data := make([]byte, largest)
	_, _ = rand.NewChaCha8([32]byte{}).Read(data)
	cpu0, nats0 := processCPU(), sum(s.natsCPU())
	began := time.Now()
	var wg sync.WaitGroup
	for i, a := range appends {
		time.Sleep(time.Until(began.Add(a.at)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.journal.Append(ctx, subject, data[:a.size], fmt.Sprintf("alone-%d-%d", began.UnixNano(), i))
			must(err)
		}()
	}
	wg.Wait()
	return processCPU() - cpu0 + sum(s.natsCPU()) - nats0
}

// grouped joins every n consecutive appends into one of their summed size,
// sent when the first of them was: the same bytes in 1/n as many messages,
// as a capture that journaled n writes at once would send them.
func grouped(appends []recordedAppend, n int) []recordedAppend {
	var out []recordedAppend
	for i, a := range appends {
		if i%n == 0 {
			out = append(out, a)
			continue
		}
		out[len(out)-1].size += a.size
	}
	return out
}

// appendLatencies publishes n messages of size bytes to s's journal one at
// a time, each followed by write (the same insert sent straight to the
// source), as a lone client's writes go through the proxy, and returns how
// long each publish took to be acknowledged: the part of a captured
// write's added latency that JetStream itself sets, with the source as
// busy between two as it is then.
func appendLatencies(ctx context.Context, s journalSetup, subject string, size, n int, write func(i int)) []time.Duration {
	data := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(data)
	out := make([]time.Duration, 0, n)
	for i := range n {
		t0 := time.Now()
		_, err := s.journal.Append(ctx, subject, data, fmt.Sprintf("alone-%d-%d", t0.UnixNano(), i))
		must(err)
		out = append(out, time.Since(t0))
		write(i)
	}
	return out
}
