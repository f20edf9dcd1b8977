package livesync

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/milvus"
)

func pendingUpsert(t *testing.T, token string, key int64) capture.Entry {
	t.Helper()
	req, err := proto.Marshal(&milvuspb.UpsertRequest{DbName: "d", CollectionName: "c", NumRows: 1, FieldsData: []*schemapb.FieldData{
		milvus.Int64Column("id", []int64{key}),
		{FieldName: "v", Type: schemapb.DataType_FloatVector, Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: 2,
			Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: []float32{1, 2}}}}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return capture.Entry{Op: capture.OpUpsert, Method: "Upsert", Database: "d", Collection: "c", Request: req, Intent: token, Pending: true}
}

func outcome(token, what string, ts uint64) capture.Entry {
	return capture.Entry{Op: capture.OpOutcome, Intent: token, Outcome: what, Timestamp: ts}
}

// seqs lists what became ready: sequence, op, and "skip" for nothing to apply.
func seqs(rs []ready) []string {
	var out []string
	for _, r := range rs {
		s := r.e.Op
		if r.skip {
			s = "skip"
		}
		out = append(out, s+"@"+strconv.FormatUint(r.seq, 10))
	}
	return out
}

// A write journaled first is applied once its outcome is read, with what
// the source answered; what came after it waits with it, in order; a
// refused write is not applied; the position moves past the outcomes.
func TestAWriteJournaledFirstWaitsForItsOutcome(t *testing.T) {
	o := newOutcomes(liveCapture{prefix: "a#"})
	heartbeat := capture.Entry{Op: capture.OpHeartbeat}
	steps := []struct {
		seq  uint64
		e    capture.Entry
		want []string
	}{
		{1, pendingUpsert(t, "a#1", 1), nil},
		{2, pendingUpsert(t, "a#2", 1), nil},
		{3, heartbeat, nil},
		{4, outcome("a#2", capture.OutcomeRefused, 0), nil}, // a#1 still waits
		{5, outcome("a#1", capture.OutcomeApplied, 9<<18), []string{"upsert@1", "skip@2", "heartbeat@5"}},
		{6, outcome("a#1", capture.OutcomeApplied, 9<<18), []string{"skip@6"}}, // a second: only the position moves
	}
	for _, s := range steps {
		got := o.read(s.seq, s.e, s.e.Marshal(), 0)
		if !reflect.DeepEqual(seqs(got), s.want) {
			t.Fatalf("after entry %d: ready %v, want %v", s.seq, seqs(got), s.want)
		}
		if s.seq == 5 && (got[0].e.Timestamp != 9<<18 || got[0].e.Pending) {
			t.Fatalf("the write is applied as %+v, without the source's timestamp", got[0].e)
		}
	}
}

// Outcomes carried by a later write's entry, or several in one entry,
// resolve the writes they name before that entry is queued; an entry
// carrying its writer's earlier outcome waits for its own.
func TestOutcomesCarriedByLaterEntriesResolveTheirWrites(t *testing.T) {
	o := newOutcomes(liveCapture{prefix: "a#"})
	carry := func(e capture.Entry, rs ...capture.Resolved) capture.Entry {
		for _, r := range rs {
			raw, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			e.Outcomes = append(e.Outcomes, raw)
		}
		return e
	}
	applied := func(tok string, ts uint64) capture.Resolved {
		return capture.Resolved{Intent: tok, Outcome: capture.OutcomeApplied, Timestamp: ts}
	}
	steps := []struct {
		seq  uint64
		e    capture.Entry
		want []string
	}{
		{1, pendingUpsert(t, "a#1", 1), nil},
		{2, carry(pendingUpsert(t, "a#2", 2), applied("a#1", 7<<18)), []string{"upsert@1"}},
		{3, pendingUpsert(t, "a#3", 3), nil},
		{4, carry(capture.Entry{Op: capture.OpOutcome},
			capture.Resolved{Intent: "a#3", Outcome: capture.OutcomeRefused}, applied("a#2", 8<<18)), []string{"upsert@2", "skip@4"}},
	}
	for _, s := range steps {
		data := s.e.Marshal()
		back, err := capture.UnmarshalEntry(data)
		if err != nil {
			t.Fatal(err)
		}
		got := o.read(s.seq, back, data, 0)
		if !reflect.DeepEqual(seqs(got), s.want) {
			t.Fatalf("after entry %d: ready %v, want %v", s.seq, seqs(got), s.want)
		}
		if s.seq == 2 && got[0].e.Timestamp != 7<<18 {
			t.Fatalf("the write is applied as %+v, without the source's timestamp", got[0].e)
		}
	}
}

// A write of a capture that no longer runs, whose outcome is not in the
// journal up to where it ended when the write was read, is repaired from
// the source by its keys; one of the running capture is waited for.
func TestAWriteWhoseCaptureDiedIsRepairedFromTheSource(t *testing.T) {
	o := newOutcomes(liveCapture{prefix: "live#"})
	dead := pendingUpsert(t, "dead#1", 1)
	// The subject's last entry is at 3 when the dead capture's write is read.
	if got := o.read(1, dead, dead.Marshal(), 3); got != nil {
		t.Fatalf("ready before the journal was read to its end: %v", seqs(got))
	}
	live := pendingUpsert(t, "live#1", 2)
	if got := o.read(2, live, live.Marshal(), 0); got != nil {
		t.Fatalf("ready %v", seqs(got))
	}
	hb := capture.Entry{Op: capture.OpHeartbeat}
	got := o.read(3, hb, hb.Marshal(), 0)
	if !reflect.DeepEqual(seqs(got), []string{"uncertain@1"}) {
		t.Fatalf("ready %v, want the dead capture's write as uncertain, the live one's waiting", seqs(got))
	}
	repaired, err := capture.UnmarshalEntry(got[0].data)
	if err != nil || repaired.Op != capture.OpUncertain || len(repaired.Request) >= len(dead.Request) {
		t.Fatalf("the repair would read %+v (%v); want an uncertain entry with the keys only", repaired, err)
	}
	if got := o.read(4, outcome("live#1", capture.OutcomeApplied, 1), nil, 0); !reflect.DeepEqual(seqs(got), []string{"upsert@2", "heartbeat@4"}) {
		t.Fatalf("ready %v", seqs(got))
	}
}

// liveCapture is a running capture whose tokens start with prefix, and
// which knows the outcomes in known.
type liveCapture struct {
	prefix string
	known  map[string]capture.Resolved
}

func (l liveCapture) Mine(token string) bool { return strings.HasPrefix(token, l.prefix) }

func (l liveCapture) Outcome(token string) (capture.Resolved, bool) {
	e, ok := l.known[token]
	return e, ok
}

// The capture's write whose outcome it knows but whose outcome's entry
// did not land (a full store) is applied by the capture's word, once
// overdue; one it knows no outcome of yet waits.
func TestAWriteWhoseOutcomeDidNotLandIsAppliedByTheCapturesWord(t *testing.T) {
	live := liveCapture{prefix: "a#", known: map[string]capture.Resolved{}}
	o := newOutcomes(live)
	p := pendingUpsert(t, "a#1", 1)
	if got := o.read(1, p, p.Marshal(), 0); got != nil {
		t.Fatalf("ready %v before any outcome", seqs(got))
	}
	if o.overdue(0) {
		t.Fatal("overdue while the capture knows no outcome")
	}
	live.known["a#1"] = capture.Resolved{Intent: "a#1", Outcome: capture.OutcomeApplied, Timestamp: 5}
	if o.overdue(time.Hour) {
		t.Fatal("overdue at once")
	}
	if !o.overdue(0) {
		t.Fatal("not overdue once the capture has the outcome")
	}
	// Read again, the write is ready by the capture's word.
	o = newOutcomes(live)
	if got := o.read(1, p, p.Marshal(), 0); !reflect.DeepEqual(seqs(got), []string{"upsert@1"}) || got[0].e.Timestamp != 5 {
		t.Fatalf("read again: ready %v", seqs(got))
	}
}
