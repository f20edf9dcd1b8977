package integration_test

import (
	"context"
	"encoding/json"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/dataplane/verify"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore/estest"
)

// everyType runs testdata/every_type.py with the test bed's pymilvus.
func everyType(t *testing.T, bed milvustest.Bed, cmd, addr string) string {
	t.Helper()
	out, err := exec.Command(bed.Python, filepath.Join(bed.Root, "dataplane", "milvus", "milvustest", "testdata", "every_type.py"), cmd, addr).Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("every_type.py %s %s: %v\n%s", cmd, addr, err, msg)
	}
	return string(out)
}

// sameThroughPymilvus compares the two clusters' "types" database as
// pymilvus reads it: structure and every row, field by field.
func sameThroughPymilvus(t *testing.T, bed milvustest.Bed, when string) {
	t.Helper()
	src, dst := everyType(t, bed, "dump", bed.Source), everyType(t, bed, "dump", bed.Target)
	if src == dst {
		return
	}
	sl, dl := strings.Split(src, "\n"), strings.Split(dst, "\n")
	for i := range min(len(sl), len(dl)) {
		if sl[i] != dl[i] {
			t.Fatalf("%s: pymilvus reads the clusters differently from line %d:\nsource: %s\ntarget: %s", when, i+1, sl[i], dl[i])
		}
	}
	t.Fatalf("%s: pymilvus dumps differ in length: %d and %d lines", when, len(sl), len(dl))
}

// sameThroughZdm runs zdm's verification and fails on any difference.
func sameThroughZdm(t *testing.T, src, dst *milvus.Conn, when string) {
	t.Helper()
	rep, err := verify.Verify(context.Background(), src, dst, verify.Options{SampleEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Equal {
		t.Fatalf("%s: verification found differences: %+v", when, rep)
	}
}

// TestEveryTypeIsCopiedReplayedAndVerified takes every field type and
// shape of Milvus 2.3 (scalars at their extremes, NaN, infinities and
// negative zero among the floats, empty and full arrays of
// every element type, JSON and dynamic fields nested, a partition key with
// its own partition count, binary vectors with text keys, autoID keys,
// scalar indexes, properties) through the copy, the capture and replay of
// inserts, upserts and deletes, and verification.
func TestEveryTypeIsCopiedReplayedAndVerified(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src, dst := milvustest.Dial(t, bed.Source), milvustest.Dial(t, bed.Target)
	everyType(t, bed, "seed", bed.Source)

	// The copy, in small pages so that a collection takes several.
	c := rowcopy.NewCopier(endpoints{"src": bed.Source, "dst": bed.Target}, rowcopy.Config{Workers: 2, PageRows: 40, RangeRows: 80}, nil)
	m := planned(t, c)
	if err := c.Copy(ctx, m, func(context.Context, domain.BulkCopyProgressed) error { return nil }); err != nil {
		t.Fatal(err)
	}
	sameThroughPymilvus(t, bed, "after the copy")
	sameThroughZdm(t, src, dst, "after the copy")

	// Writes of every kind through the proxy, replayed.
	store := estest.NewStore(t)
	b := &syncBed{bed: bed, src: src, dst: dst, id: "m-types", journal: estest.Journal(t, store), intents: estest.KV(t, store, "TEST_INTENTS")}
	b.applier = livesync.NewApplier(b.id, b.journal, src, dst, estest.KV(t, store, "TEST_APPLY"), true,
		func(string, string) bool { return true }, func(err error) { t.Error(err) }, nil)
	everyType(t, bed, "write", b.proxy(t))
	b.apply(t)
	b.drain(t)
	sameThroughPymilvus(t, bed, "after the replay")
	sameThroughZdm(t, src, dst, "after the replay")

	// A change to every field of one row is found, and each field named:
	// one verification for them all, as each names its own.
	row, err := dst.Query(ctx, "types", "every", "id == 1", append(fieldNamesOf(t, dst, "types", "every"), milvus.DynamicFieldName), nil, 0)
	if err != nil || milvus.Rows(row) != 1 {
		t.Fatalf("row 1 on the target: %v", err)
	}
	planted := make([]*schemapb.FieldData, len(row))
	var changed []string
	for i, c := range row {
		c.IsDynamic = c.GetFieldName() == milvus.DynamicFieldName
		planted[i] = proto.Clone(c).(*schemapb.FieldData)
		if name := c.GetFieldName(); name != "id" {
			plant(t, planted[i])
			changed = append(changed, name)
		}
	}
	if _, err := dst.Upsert(ctx, "types", "every", "", planted, 1); err != nil {
		t.Fatalf("plant a change in every field: %v", err)
	}
	rep, err := verify.Verify(ctx, src, dst, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var named []string
	for _, c := range rep.Collections {
		for _, m := range c.Mismatches {
			if fields, ok := strings.CutPrefix(m, "1 differs in "); ok && c.Collection == "every" {
				named = strings.Split(fields, ", ")
			}
		}
	}
	slices.Sort(named)
	slices.Sort(changed)
	if rep.Equal || !slices.Equal(named, changed) {
		t.Errorf("a change in every field: verification reported %q, want row 1 named with the fields %v", mismatches(rep), changed)
	}
	if _, err := dst.Upsert(ctx, "types", "every", "", row, 1); err != nil {
		t.Fatal(err)
	}
	sameThroughZdm(t, src, dst, "after the planted changes were undone")

	// After the switch, applications of the autoID collection go on
	// inserting without keys.
	keylessInsertsAfterTheSwitch(t, bed, dst)
}

func fieldNamesOf(t *testing.T, c *milvus.Conn, db, coll string) []string {
	t.Helper()
	col, err := c.Structure(context.Background(), db, coll)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range col.Schema.GetFields() {
		out = append(out, f.GetName())
	}
	return out
}

func mismatches(rep *verify.Report) string {
	var out []string
	for _, c := range rep.Collections {
		out = append(out, c.Mismatches...)
	}
	return strings.Join(append(out, rep.Structure...), "; ")
}

// plant changes the first value of a one-row column, within what its type
// takes: the smallest change that still is a change.
func plant(t *testing.T, c *schemapb.FieldData) {
	t.Helper()
	if v := c.GetVectors(); v != nil {
		if f := v.GetFloatVector(); f != nil {
			f.Data[0] += 0.125
		} else {
			v.GetBinaryVector()[0] ^= 1
		}
		return
	}
	s := c.GetScalars()
	if a := s.GetArrayData(); a != nil {
		plantScalar(t, a.Data[0], c.GetFieldName())
		return
	}
	plantScalar(t, s, c.GetFieldName())
}

func plantScalar(t *testing.T, s *schemapb.ScalarField, name string) {
	t.Helper()
	switch {
	case len(s.GetBoolData().GetData()) > 0:
		s.GetBoolData().Data[0] = !s.GetBoolData().Data[0]
	case len(s.GetIntData().GetData()) > 0:
		s.GetIntData().Data[0] ^= 1
	case len(s.GetLongData().GetData()) > 0:
		s.GetLongData().Data[0] ^= 1
	case len(s.GetFloatData().GetData()) > 0:
		s.GetFloatData().Data[0] = math.Float32frombits(math.Float32bits(s.GetFloatData().Data[0]) ^ 1)
	case len(s.GetDoubleData().GetData()) > 0:
		s.GetDoubleData().Data[0] = math.Float64frombits(math.Float64bits(s.GetDoubleData().Data[0]) ^ 1)
	case len(s.GetStringData().GetData()) > 0:
		v := []byte(s.GetStringData().Data[0])
		if len(v) == 0 {
			v = []byte("z")
		} else {
			v[0] ^= 1
		}
		s.GetStringData().Data[0] = string(v)
	case len(s.GetJsonData().GetData()) > 0:
		s.GetJsonData().Data[0] = []byte(`{"planted":true}`)
	default:
		t.Fatalf("field %s: no value to change", name)
	}
}

// keylessInsertsAfterTheSwitch sends inserts without keys into the autoID
// collection through a proxy routed to the target, as after the switch:
// the target keeps the source's keys in a field without autoID, so the
// proxy must give new keys, above every key there, never twice.
func keylessInsertsAfterTheSwitch(t *testing.T, bed milvustest.Bed, dst *milvus.Conn) {
	t.Helper()
	ctx := context.Background()
	col, err := dst.Structure(ctx, "types", "auto")
	if err != nil {
		t.Fatal(err)
	}
	if col.PrimaryField().GetAutoID() || col.Properties[milvus.KeptAutoIDProperty] != "true" {
		t.Fatalf("the target's autoID collection: autoID %v, properties %v", col.PrimaryField().GetAutoID(), col.Properties)
	}
	existing, err := dst.Query(ctx, "types", "auto", "id > 0", []string{"id"}, nil, 16384)
	if err != nil {
		t.Fatal(err)
	}
	highest := int64(0)
	for _, k := range milvus.KeysOf(milvus.Column(existing, "id")).Ints {
		highest = max(highest, k)
	}
	// A key far above any the clock would give, as a source whose clock
	// ran ahead may hold: new keys go above it too.
	ahead := time.Now().UnixMilli()<<18 + 1<<45
	if _, err := dst.Insert(ctx, "types", "auto", "", milvus.RowGen{Schema: col.Schema, Rand: milvustest.NewRand()}.Columns(1, milvus.Keys{Ints: []int64{ahead}},
		func(int) int64 { return 1 }), 1); err != nil {
		t.Fatal(err)
	}
	highest = max(highest, ahead)
	c := capture.NewCapture(nil, nil, nil)
	c.Route("src", bed.Target)
	addr := serveProxy(t, capture.NewProxy("src", func() string { return bed.Source }, c, nil))

	var keys []int64
	if err := json.Unmarshal([]byte(everyType(t, bed, "autoinsert", addr)), &keys); err != nil {
		t.Fatal(err)
	}
	through := milvustest.Dial(t, addr)
	// As the application sees it through the proxy: keys given by the
	// server.
	asSeen := proto.Clone(col.Schema).(*schemapb.CollectionSchema)
	asSeen.Fields[0].AutoID = true
	gen := milvus.RowGen{Schema: asSeen, Rand: milvustest.NewRand()}
	res, err := through.Insert(ctx, "types", "auto", "", gen.Columns(7, milvus.Keys{}, func(int) int64 { return 1 }), 7)
	if err != nil {
		t.Fatalf("a keyless insert through the proxy (Go SDK): %v", err)
	}
	keys = append(keys, milvus.KeysOfIDs(res.GetIDs()).Ints...)
	seen := map[int64]bool{}
	for _, k := range keys {
		if k <= highest || seen[k] {
			t.Fatalf("key %d given (highest before %d, given already %v): %v", k, highest, seen[k], keys)
		}
		seen[k] = true
	}
	if len(keys) != 12 {
		t.Fatalf("%d keys for 12 rows", len(keys))
	}
	n, err := dst.CountWhere(ctx, "types", "auto", milvus.Keys{Ints: keys}.InExpr("id"))
	if err != nil || n != 12 {
		t.Fatalf("the target holds %d of the 12 rows (%v)", n, err)
	}
}
