package capture

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
)

const upsertMethod = "/milvus.proto.milvus.MilvusService/Upsert"

func upsertOf(t *testing.T, key int64) []byte {
	t.Helper()
	req, err := proto.Marshal(&milvuspb.UpsertRequest{DbName: "d", CollectionName: "c", NumRows: 1, FieldsData: keyColumn(key)})
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// insertOf is an insert of one row of key into d/c.
func insertOf(t *testing.T, key int64) []byte {
	t.Helper()
	req, err := proto.Marshal(&milvuspb.InsertRequest{DbName: "d", CollectionName: "c", NumRows: 1, FieldsData: keyColumn(key)})
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func keyColumn(key int64) []*schemapb.FieldData {
	return []*schemapb.FieldData{{
		FieldName: "id", Type: schemapb.DataType_Int64,
		Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: []int64{key}}}}},
	}}
}

// intentStore opens a journal and an intents bucket, each on a connection
// of its own, as zdmd does.
func intentStore(t testing.TB) (*eventstore.Journal, *eventstore.KV) {
	srv := estest.Start(t)
	journal, err := srv.Store(t).OpenJournalOn(context.Background(), srv.Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	return journal, estest.KV(t, srv.Store(t), "TEST_INTENTS")
}

// armedCapture is a capture armed for migration m-1 of cluster src.
func armedCapture(t testing.TB) (*Capture, *eventstore.KV) {
	journal, intents := intentStore(t)
	c := NewCapture(journal, nil, nil)
	c.KeepGivenKeys(intents)
	c.Arm("src", "m-1", domain.Options{})
	return c, intents
}

// keyField says every collection is itself, with key field "id".
func keyField(_ context.Context, _, name string) (string, string, error) { return name, "id", nil }

// begin lets an upsert of key through c, as the proxy does before
// forwarding it.
func begin(t *testing.T, c *Capture, key int64) *call {
	t.Helper()
	k, err := c.before(context.Background(), "src", upsertMethod, upsertOf(t, key), "", keyField)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// answered is the answer of a write the server applied.
func answered() []byte {
	ok, _ := proto.Marshal(&milvuspb.MutationResult{})
	return ok
}

// journaled returns the journal's entries for d/c of migration m-1 as the
// applier takes them: each write journaled first with its outcome, once
// that is journaled (waiting a while for it): acknowledged with what the
// source answered, unknown as uncertain, left out if refused or never
// sent. A write whose outcome never came stays pending.
func journaled(t *testing.T, j *eventstore.Journal) []Entry {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		raw := journaledRaw(t, j)
		outcomes := map[string]Resolved{}
		for _, e := range raw {
			for _, r := range e.Resolutions() {
				outcomes[r.Intent] = r
			}
		}
		var out []Entry
		waiting := false
		for _, e := range raw {
			o, known := outcomes[e.Intent]
			switch {
			case e.Op == OpOutcome:
				continue
			case !e.Pending:
			case !known:
				waiting = true
			case o.Outcome == OutcomeApplied:
				e.Pending, e.Timestamp, e.IDs = false, o.Timestamp, o.IDs
			case o.Outcome == OutcomeUnknown:
				e.Pending, e.Op = false, OpUncertain
			default:
				continue
			}
			out = append(out, e)
		}
		if !waiting || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// journaledRaw returns the journal's entries for d/c of migration m-1.
func journaledRaw(t *testing.T, j *eventstore.Journal) []Entry {
	t.Helper()
	var out []Entry
	for seq := uint64(1); ; seq++ {
		s, data, ok, err := j.Next(context.Background(), CollectionSubject("m-1", "d", "c"), seq)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		e, err := UnmarshalEntry(data)
		if err != nil {
			t.Fatal(err)
		}
		out, seq = append(out, e), s
	}
}

// settled waits for the outcomes c is journaling.
func settled(t *testing.T, c *Capture) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.Settle(ctx)
	if ctx.Err() != nil {
		t.Fatal("outcomes not journaled in 10 s")
	}
}

// A write is journaled whole before it is sent, and what the source
// answered follows, naming it: an acknowledged write with the source's
// timestamp, a refused one as refused, one never sent as unsent, one the
// source stopped waiting for or broken off on its way as unknown.
func TestAWriteIsJournaledBeforeItIsSentAndItsOutcomeAfter(t *testing.T) {
	ctx := context.Background()
	c, _ := armedCapture(t)
	journal := c.journal.(*eventstore.Journal)
	acked, _ := proto.Marshal(&milvuspb.MutationResult{Timestamp: 7 << 18})
	refused, _ := proto.Marshal(&milvuspb.MutationResult{Status: &commonpb.Status{Code: 1100, Reason: "invalid"}})
	stopped, _ := proto.Marshal(&milvuspb.MutationResult{Status: &commonpb.Status{Code: 1, Reason: "context deadline exceeded"}})

	one := begin(t, c, 1)
	if entries := journaledRaw(t, journal); len(entries) != 1 || !entries[0].Pending || entries[0].Intent != one.token ||
		!bytes.Equal(entries[0].Request, upsertOf(t, 1)) {
		t.Fatalf("before it is sent, the journal holds %+v; want the write whole, pending", entries)
	}
	if err := c.after(ctx, one, upsertOf(t, 1), acked); err != nil {
		t.Fatal(err)
	}
	two, three, four, five := begin(t, c, 2), begin(t, c, 3), begin(t, c, 4), begin(t, c, 5)
	if err := c.after(ctx, two, upsertOf(t, 2), refused); err != nil {
		t.Fatal(err)
	}
	c.unsent(ctx, three)
	if err := c.after(ctx, four, upsertOf(t, 4), stopped); err != nil {
		t.Fatal(err)
	}
	c.broken(ctx, five)
	settled(t, c)
	want := map[string]string{one.token: OutcomeApplied, two.token: OutcomeRefused, three.token: OutcomeUnsent,
		four.token: OutcomeUnknown, five.token: OutcomeUnknown}
	got := map[string]string{}
	for _, e := range journaledRaw(t, journal) {
		for _, r := range e.Resolutions() {
			if _, twice := got[r.Intent]; twice {
				t.Errorf("two outcomes of %s", r.Intent)
			}
			got[r.Intent] = r.Outcome
			if r.Intent == one.token && r.Timestamp != 7<<18 {
				t.Errorf("the outcome of an acknowledged write has timestamp %d, want the source's", r.Timestamp)
			}
		}
	}
	if !maps.Equal(got, want) {
		t.Fatalf("outcomes %v, want %v", got, want)
	}
	for _, k := range []*call{one, two, three, four, five} {
		if !c.Mine(k.token) {
			t.Fatalf("token %s is not this capture's", k.token)
		}
	}
	if NewCapture(journal, nil, nil).Mine(one.token) {
		t.Fatal("another capture takes this one's token for its own")
	}
}

// A write stays in flight until its outcome is journaled: a hold for the
// switch waits for it, so the fence covers it.
func TestAHoldWaitsForTheOutcomesOfTheWritesAnswered(t *testing.T) {
	ctx := context.Background()
	journal, intents := intentStore(t)
	slow := &slowOutcomes{Journal: journal, gate: make(chan struct{})}
	c := NewCapture(slow, nil, nil)
	c.KeepGivenKeys(intents)
	c.Arm("src", "m-1", domain.Options{})
	k := begin(t, c, 1)
	if err := c.after(ctx, k, upsertOf(t, 1), answered()); err != nil {
		t.Fatal(err)
	}
	held := holdAndRelease(ctx, c)
	select {
	case <-held:
		t.Fatal("the hold returned before the outcome of the write answered was journaled")
	case <-time.After(300 * time.Millisecond):
	}
	close(slow.gate)
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the hold did not return once the outcome was journaled")
	}
}

// slowOutcomes is a journal whose outcome entries wait for gate.
type slowOutcomes struct {
	*eventstore.Journal
	gate chan struct{}
}

func (s *slowOutcomes) Append(ctx context.Context, subject string, data []byte, id string) (uint64, error) {
	if e, err := UnmarshalEntry(data); err == nil && e.Op == OpOutcome {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return s.Journal.Append(ctx, subject, data, id)
}

// failOnAppend is a journal whose appends fail.
type failOnAppend struct{ *eventstore.Journal }

func (failOnAppend) Append(context.Context, string, []byte, string) (uint64, error) {
	return 0, errors.New("nats: no responders available for request")
}

type recordedFailures struct{ reasons []string }

func (r *recordedFailures) FailMigration(_ context.Context, id, reason, _ string) error {
	r.reasons = append(r.reasons, id+" "+reason)
	return nil
}

// A write the source applied whose outcome the journal cannot take, when
// this zdmd's term ends (another may now drive the migration): the client
// has its answer already, the outcome is no longer tried, the migration
// is not failed, and a hold does not wait for it. The next term's applier
// repairs the write from the source.
func TestAnOutcomeCutOffByTheEndOfItsTermIsLeftToTheNext(t *testing.T) {
	journal, intents := intentStore(t)
	failed := &recordedFailures{}
	c := NewCapture(failOutcomes{journal}, failed, nil)
	c.KeepGivenKeys(intents)
	term, end := context.WithCancel(context.Background())
	c.ServeTerm(term, nil)
	c.Arm("src", "m-1", domain.Options{})
	k := begin(t, c, 7)
	began := time.Now()
	if err := c.after(context.Background(), k, upsertOf(t, 7), answered()); err != nil {
		t.Fatalf("answer: %v", err)
	}
	if took := time.Since(began); took > time.Second {
		t.Fatalf("the client waited %s for the outcome", took)
	}
	time.AfterFunc(200*time.Millisecond, end)
	settled(t, c)
	if len(failed.reasons) != 0 {
		t.Fatalf("a term that ended failed the migration: %v", failed.reasons)
	}
	if entries := journaledRaw(t, journal); len(entries) != 1 || !entries[0].Pending || entries[0].Intent != k.token {
		t.Fatalf("journaled %+v, want the write's entry alone, for the next term to repair", entries)
	}
}

// failOutcomes is a journal whose outcome entries fail.
type failOutcomes struct{ *eventstore.Journal }

func (f failOutcomes) Append(ctx context.Context, subject string, data []byte, id string) (uint64, error) {
	if e, err := UnmarshalEntry(data); err == nil && e.Op == OpOutcome {
		return 0, errors.New("nats: no responders available for request")
	}
	return f.Journal.Append(ctx, subject, data, id)
}

// While writes are held, the outcome of a write the hold waits for is
// journaled as it comes, not after the wait for a write to ride with: the
// switch would wait that long for nothing, as no write comes.
func TestAWriteHeldForIsResolvedWithoutLingering(t *testing.T) {
	ctx := context.Background()
	journal, intents := intentStore(t)
	c := NewCapture(journal, nil, nil)
	c.linger = time.Hour
	c.KeepGivenKeys(intents)
	c.Arm("src", "m-1", domain.Options{})
	k := begin(t, c, 1) // in flight: forwarded, not yet answered
	held := holdAndRelease(ctx, c)
	// The hold begins before the write is answered.
	for deadline := time.Now().Add(10 * time.Second); !c.holding(k.a); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the hold did not begin")
		}
	}
	if err := c.after(ctx, k, upsertOf(t, 1), answered()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the hold still waits for an outcome lingering for a write to ride with")
	}
}

// holdAndRelease holds the writes of cluster src, and releases them once
// held; the channel closes then.
func holdAndRelease(ctx context.Context, c *Capture) <-chan struct{} {
	held := make(chan struct{})
	go func() {
		release, err := c.Hold(ctx, "src")
		if err == nil {
			release()
		}
		close(held)
	}()
	return held
}
