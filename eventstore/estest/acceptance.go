package estest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
)

// Log is what zdm asks of its event log: the handlers' port, and the
// paging and listing the API and the saga use.
type Log interface {
	Append(ctx context.Context, subject string, expected uint64, b domain.Batch) (uint64, error)
	Load(ctx context.Context, subject string, after uint64) ([]domain.Record, uint64, error)
	Page(ctx context.Context, subject string, after uint64, messages int, keep func(domain.Event) bool) ([]domain.Record, uint64, bool, error)
	Subjects(ctx context.Context, prefix string) ([]string, error)
}

// EventLog is the event log's acceptance suite: every way zdm reaches its
// log runs it, each case on a fresh log from open.
func EventLog(t *testing.T, open func(t *testing.T) Log) {
	for name, test := range map[string]func(*testing.T, Log){
		"concurrentAppendsExactlyOneWins":            concurrentAppendsExactlyOneWins,
		"newSubjectExpectsZero":                      newSubjectExpectsZero,
		"retriedCommandIsStoredOnce":                 retriedCommandIsStoredOnce,
		"replayReturnsWhatWasAppendedInOrder":        replayReturnsWhatWasAppendedInOrder,
		"aCommandIDOfAnotherAggregateIsNotItsAnswer": aCommandIDOfAnotherAggregateIsNotItsAnswer,
		"pagesWalkOneSubjectAndReadOnlyThemselves":   pagesWalkOneSubjectAndReadOnlyThemselves,
	} {
		t.Run(name, func(t *testing.T) { test(t, open(t)) })
	}
}

// Batch is a batch of events on behalf of "tester", at a fixed time.
func Batch(cmdID string, events ...domain.Event) domain.Batch {
	return domain.Batch{CommandID: cmdID, Actor: "tester", At: time.Unix(1700000000, 0), Events: events}
}

func concurrentAppendsExactlyOneWins(t *testing.T, st Log) {
	ctx := context.Background()
	subj := domain.MigrationSubject + "m1"
	seq, err := st.Append(ctx, subj, 0, Batch("c0", domain.MigrationRequested{ID: "m1"}))
	if err != nil {
		t.Fatal(err)
	}
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = st.Append(ctx, subj, seq, Batch(fmt.Sprintf("w%d", i), domain.Locked{SourceClusterID: "c1"}))
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, domain.ErrConflict) || !eventstore.IsConflict(err):
			t.Fatalf("loser got %v, want ErrConflict", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d appends won, want exactly 1", won)
	}
	recs, last, err := st.Load(ctx, subj, 0)
	if err != nil || len(recs) != 2 || last != recs[1].Seq {
		t.Fatalf("load: %d records, last %d, err %v", len(recs), last, err)
	}
}

func newSubjectExpectsZero(t *testing.T, st Log) {
	ctx := context.Background()
	subj := domain.MigrationSubject + "fresh"
	if _, err := st.Append(ctx, subj, 0, Batch("a", domain.MigrationRequested{ID: "fresh"})); err != nil {
		t.Fatal(err)
	}
	// A second "create" of the same aggregate must conflict, not append.
	if _, err := st.Append(ctx, subj, 0, Batch("b", domain.MigrationRequested{ID: "fresh"})); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("second create: %v", err)
	}
}

func retriedCommandIsStoredOnce(t *testing.T, st Log) {
	ctx := context.Background()
	subj := domain.MigrationSubject + "m2"
	b := Batch("cmd-1", domain.MigrationRequested{ID: "m2"}, domain.Locked{SourceClusterID: "c"})
	s1, err := st.Append(ctx, subj, 0, b)
	if err != nil {
		t.Fatal(err)
	}
	// The retry carries the expectation of the first try; deduplication
	// answers it with the first sequence instead of a conflict.
	s2, err := st.Append(ctx, subj, 0, b)
	if !errors.Is(err, domain.ErrAlreadyStored) {
		t.Fatalf("retry: %v", err)
	}
	if s1 != s2 {
		t.Fatalf("retry stored at %d, first at %d", s2, s1)
	}
	recs, _, err := st.Load(ctx, subj, 0)
	if err != nil || len(recs) != 2 {
		t.Fatalf("want the 2 events of one batch once, got %d (%v)", len(recs), err)
	}
	if recs[0].Seq != recs[1].Seq {
		t.Fatal("events of one command were stored apart")
	}
}

func replayReturnsWhatWasAppendedInOrder(t *testing.T, st Log) {
	ctx := context.Background()
	subj := domain.MigrationSubject + "m3"
	other := domain.MigrationSubject + "other"
	var last uint64
	var err error
	if last, err = st.Append(ctx, subj, 0, Batch("", domain.MigrationRequested{ID: "m3"})); err != nil {
		t.Fatal(err)
	}
	var otherLast uint64
	for i := range 300 {
		if last, err = st.Append(ctx, subj, last, Batch("", domain.LagSampled{LagSeconds: float64(i)})); err != nil {
			t.Fatal(err)
		}
		if otherLast, err = st.Append(ctx, other, otherLast, Batch("", domain.LagSampled{LagSeconds: -1})); err != nil {
			t.Fatal(err)
		}
	}
	recs, got, err := st.Load(ctx, subj, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got != last || len(recs) != 301 {
		t.Fatalf("loaded %d records up to %d, want 301 up to %d", len(recs), got, last)
	}
	for i, r := range recs[1:] {
		if lag := r.Event.(domain.LagSampled).LagSeconds; lag != float64(i) {
			t.Fatalf("record %d has lag %v: out of order or foreign", i+1, lag)
		}
		if r.Actor != "tester" || !r.At.Equal(time.Unix(1700000000, 0)) {
			t.Fatalf("metadata lost: %+v", r)
		}
	}
	// Loading after a known sequence returns only what is newer.
	tail, _, err := st.Load(ctx, subj, recs[299].Seq)
	if err != nil || len(tail) != 1 {
		t.Fatalf("tail: %d records, %v", len(tail), err)
	}
	subjects, err := st.Subjects(ctx, domain.MigrationSubject)
	if err != nil || len(subjects) != 2 {
		t.Fatalf("subjects: %v %v", subjects, err)
	}
}

func aCommandIDOfAnotherAggregateIsNotItsAnswer(t *testing.T, st Log) {
	ctx := context.Background()
	a, b := domain.MigrationSubject+"ma", domain.MigrationSubject+"mb"
	if _, err := st.Append(ctx, a, 0, Batch("k1", domain.MigrationRequested{ID: "ma"})); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, b, 0, Batch("other", domain.MigrationRequested{ID: "mb"})); err != nil {
		t.Fatal(err)
	}
	// The same command ID on b: JetStream deduplicates it against a's
	// message, which must not count as b's.
	_, last, err := st.Load(ctx, b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(ctx, b, last, Batch("k1", domain.Cancelled{})); !errors.Is(err, domain.ErrCommandReused) {
		t.Fatalf("got %v", err)
	}
	recs, _, err := st.Load(ctx, b, 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("b holds %d events (%v)", len(recs), err)
	}
}

// A page reads the batches it returns and no more: pages walk a subject in
// order among another subject's messages, a batch is never split, and a
// filtered page counts what it skipped.
func pagesWalkOneSubjectAndReadOnlyThemselves(t *testing.T, st Log) {
	ctx := context.Background()
	subj, other := domain.MigrationSubject+"m4", domain.MigrationSubject+"m5"
	var last, otherLast uint64
	var err error
	for i := range 250 {
		b := Batch("", domain.LagSampled{LagSeconds: float64(i)})
		if i%50 == 0 {
			// Every fiftieth batch is a step of two events.
			b = Batch("", domain.LagSampled{LagSeconds: float64(i), Crossed: "under"}, domain.LagThresholdReached{LagSeconds: float64(i)})
		}
		if last, err = st.Append(ctx, subj, last, b); err != nil {
			t.Fatal(err)
		}
		if otherLast, err = st.Append(ctx, other, otherLast, Batch("", domain.LagSampled{LagSeconds: -1})); err != nil {
			t.Fatal(err)
		}
	}
	var all []domain.Record
	after, pages := uint64(0), 0
	for more := true; more; pages++ {
		var recs []domain.Record
		recs, after, more, err = st.Page(ctx, subj, after, 40, nil)
		if err != nil {
			t.Fatal(err)
		}
		seqs := map[uint64]bool{}
		for _, r := range recs {
			seqs[r.Seq] = true
		}
		if len(seqs) > 40 {
			t.Fatalf("a page of 40 batches holds %d", len(seqs))
		}
		all = append(all, recs...)
	}
	if pages != 7 || len(all) != 255 || after != last {
		t.Fatalf("%d pages, %d events, ending at %d; want 7 pages, 255 events, ending at %d", pages, len(all), after, last)
	}
	for i, r := range all {
		if i > 0 && r.Seq < all[i-1].Seq {
			t.Fatalf("event %d out of order", i)
		}
		if l, ok := r.Event.(domain.LagSampled); ok && l.LagSeconds < 0 {
			t.Fatalf("event %d is another subject's", i)
		}
	}
	// Steps only: the skipped samples still count towards a page, so a
	// page may hold nothing while more follow.
	steps, next, more, err := st.Page(ctx, subj, 0, 51, domain.IsStep)
	if err != nil || len(steps) != 4 || !more || next == 0 {
		t.Fatalf("first 51 batches: %d steps, next %d, more %v, %v", len(steps), next, more, err)
	}
	empty, next2, more, err := st.Page(ctx, subj, next, 20, domain.IsStep)
	if err != nil || len(empty) != 0 || !more || next2 <= next {
		t.Fatalf("20 batches of samples: %d steps, next %d after %d, more %v, %v", len(empty), next2, next, more, err)
	}
	if recs, at, more, err := st.Page(ctx, subj, last, 10, nil); err != nil || len(recs) != 0 || more || at != last {
		t.Fatalf("a page after the last: %d events, at %d, more %v, %v", len(recs), at, more, err)
	}
}
