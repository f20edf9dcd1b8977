package capture

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
	"github.com/zdm-io/zdm/retry"
)

const upsertMethod = "/milvus.proto.milvus.MilvusService/Upsert"

func upsertOf(t *testing.T, key int64) []byte {
	t.Helper()
	req, err := proto.Marshal(&milvuspb.UpsertRequest{DbName: "d", CollectionName: "c", NumRows: 1, FieldsData: []*schemapb.FieldData{{
		FieldName: "id", Type: schemapb.DataType_Int64,
		Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: []int64{key}}}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return req
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
	c.KeepIntents(intents)
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

// journaled returns the journal's entries for d/c of migration m-1.
func journaled(t *testing.T, j *eventstore.Journal) []Entry {
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

// A write's intent is not cleared after the write is journaled (that cost
// a JetStream operation per write); the next zdmd finds it settled by its
// journal entry and repairs only the write whose outcome it never saw.
func TestOnlyUnsettledIntentsAreRepairedAfterARestart(t *testing.T) {
	ctx := context.Background()
	journal, intents := intentStore(t)
	ok := answered()
	first := NewCapture(journal, nil, nil)
	first.KeepIntents(intents)
	if err := first.Recover(ctx, "m-1"); err != nil {
		t.Fatal(err)
	}
	first.Arm("src", "m-1", domain.Options{})
	// The write of key 1 is answered and journaled while that of key 2 is
	// in flight, and stays so: zdmd dies. The write of key 3 reuses key
	// 1's slot and is journaled too.
	one, held := begin(t, first, 1), begin(t, first, 2)
	first.after(ctx, one, upsertOf(t, 1), ok)
	three := begin(t, first, 3)
	if three.slot != one.slot {
		t.Fatalf("key 3 took slot %d, not the settled slot %d", three.slot, one.slot)
	}
	first.after(ctx, three, upsertOf(t, 3), ok)
	left, err := intents.All(ctx)
	if err != nil || len(left) != 2 {
		t.Fatalf("want two intents kept (one settled, one in flight), got %d (%v)", len(left), err)
	}

	next := NewCapture(journal, nil, nil)
	next.KeepIntents(intents)
	if err := next.Recover(ctx, "m-1"); err != nil {
		t.Fatal(err)
	}
	entries := journaled(t, journal)
	if len(entries) != 3 {
		t.Fatalf("want 2 journaled writes and 1 uncertain one, got %d entries", len(entries))
	}
	for i, e := range entries[:2] {
		if e.Op != OpUpsert || e.Intent == "" {
			t.Errorf("entry %d: op %q intent %q", i, e.Op, e.Intent)
		}
	}
	if u := entries[2]; u.Op != OpUncertain || u.Intent != held.token {
		t.Fatalf("the repaired write is %q %q, want the one in flight %q", u.Op, u.Intent, held.token)
	}
	if left, err := intents.All(ctx); err != nil || len(left) != 0 {
		t.Fatalf("intents left after recovery: %d %v", len(left), err)
	}
}

// A slot idle for a while is cleared; one in use, or reused lately, is not.
func TestSweepClearsOnlyIdleSettledIntents(t *testing.T) {
	ctx := context.Background()
	c, intents := armedCapture(t)
	k, inflight := begin(t, c, 1), begin(t, c, 2)
	c.after(ctx, k, upsertOf(t, 1), answered())
	value := func(slot int) []byte {
		all, err := intents.All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return all[c.intentKey("m-1", slot)]
	}
	c.SweepIntents(ctx)
	if len(value(k.slot)) == 0 {
		t.Fatal("a slot freed just now was cleared")
	}
	time.Sleep(sweepAfter + 100*time.Millisecond)
	c.SweepIntents(ctx)
	if len(value(k.slot)) != 0 {
		t.Fatal("an idle settled slot was not cleared")
	}
	if len(value(inflight.slot)) == 0 {
		t.Fatal("the intent of a write in flight was cleared")
	}
	if again := begin(t, c, 1); again.slot != k.slot {
		t.Fatalf("the cleared slot %d is not reused: %d", k.slot, again.slot)
	}
}

// A write that ends after its migration's intents were dropped leaves no
// key behind, swept or not.
func TestAnEndedMigrationKeepsNoIntents(t *testing.T) {
	ctx := context.Background()
	c, intents := armedCapture(t)
	k := begin(t, c, 1)
	if err := c.DropIntents(ctx, "m-1"); err != nil {
		t.Fatal(err)
	}
	c.after(ctx, k, upsertOf(t, 1), answered())
	time.Sleep(sweepAfter + 100*time.Millisecond)
	c.SweepIntents(ctx)
	if left, err := intents.All(ctx); err != nil || len(left) != 0 {
		t.Fatalf("keys left for an ended migration: %v %v", left, err)
	}
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

func TestAnUncertainWriteTheJournalCannotTakeFailsTheMigration(t *testing.T) {
	journal, intents := intentStore(t)
	failed := &recordedFailures{}
	c := NewCapture(failOnAppend{journal}, failed, nil)
	c.KeepIntents(intents)
	// Fewer tries than a zdmd makes, each failing at once.
	c.RetryJournal(retry.Policy{Attempts: 3, First: 10 * time.Millisecond})
	c.Arm("src", "m-1", domain.Options{})
	k := begin(t, c, 7)
	if len(k.keys) == 0 || len(k.keys) > len(upsertOf(t, 7)) {
		t.Fatalf("the uncertain entry would carry %d bytes", len(k.keys))
	}
	c.broken(context.Background(), k)
	if strings.Join(failed.reasons, ";") != "m-1 journal_unavailable" {
		t.Fatalf("failures: %v", failed.reasons)
	}
}

// A write the source applied while the journal cannot take it, when this
// zdmd's term ends (another may now drive the migration): its entry is no
// longer tried, since landing after the next term read the journal it
// would be replayed after later writes; the migration is not failed; the
// client is told at once; and the write's intent stays, for the next term
// to repair it from the source.
func TestAWriteCutOffByTheEndOfItsTermIsLeftToTheNext(t *testing.T) {
	journal, intents := intentStore(t)
	failed := &recordedFailures{}
	c := NewCapture(failOnAppend{journal}, failed, nil)
	c.KeepIntents(intents)
	term, end := context.WithCancel(context.Background())
	c.ServeTerm(term)
	c.Arm("src", "m-1", domain.Options{})
	k := begin(t, c, 7)
	time.AfterFunc(200*time.Millisecond, end)
	began := time.Now()
	err := c.after(context.Background(), k, upsertOf(t, 7), answered())
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("the write was answered %s after its term ended; the journal's tries span 19 s", took)
	}
	var refusal *Refusal
	if !errors.As(err, &refusal) || !strings.Contains(refusal.Reason, "stopped driving") {
		t.Fatalf("answer: %v", err)
	}
	if len(failed.reasons) != 0 {
		t.Fatalf("a term that ended failed the migration: %v", failed.reasons)
	}
	left, err := intents.All(context.Background())
	if err != nil || len(left) != 1 {
		t.Fatalf("intents left for the next term: %d (%v), want the write's", len(left), err)
	}
	next := NewCapture(journal, nil, nil)
	next.KeepIntents(intents)
	if err := next.Recover(context.Background(), "m-1"); err != nil {
		t.Fatal(err)
	}
	if entries := journaled(t, journal); len(entries) != 1 || entries[0].Op != OpUncertain || entries[0].Intent != k.token {
		t.Fatalf("the next term journaled %+v, want the write as uncertain", entries)
	}
}

// A write that reaches the capture after its term ended is not sent: the
// zdmd that drives next may have read the intents before this one's.
func TestAWriteAfterTheEndOfItsTermIsNotSent(t *testing.T) {
	journal, intents := intentStore(t)
	c := NewCapture(journal, nil, nil)
	c.KeepIntents(intents)
	term, end := context.WithCancel(context.Background())
	c.ServeTerm(term)
	c.Arm("src", "m-1", domain.Options{})
	end()
	sent := false
	_, err := c.Forward(context.Background(), Call{ClusterID: "src", Method: upsertMethod, Request: upsertOf(t, 7), Lookup: keyField},
		func(context.Context, []byte) (Sent, error) { sent = true; return Sent{}, nil })
	if sent || status.Code(err) != codes.Unavailable {
		t.Fatalf("sent %v, answer %v; want nothing sent and UNAVAILABLE", sent, err)
	}
	if entries := journaled(t, journal); len(entries) != 0 {
		t.Fatalf("journaled %+v", entries)
	}
}
