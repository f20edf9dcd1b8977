package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/restgate"
	"github.com/zdm-io/zdm/dataplane/verify"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore/estest"
)

// serveEndpoint serves the source's endpoint as zdmd does, driven by a
// proxy with the bed's capture and carrying the RESTful API, until the
// test ends; it returns its address.
func (b *syncBed) serveEndpoint(t *testing.T) string {
	t.Helper()
	p, _ := b.armedProxy(b.journal, nil)
	ep := capture.NewEndpoint("src", func() string { return "" }, nil)
	ep.CarryREST(restgate.New)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ep.Serve(ln) }()
	t.Cleanup(ep.Stop)
	ep.Drive(p)
	return ln.Addr().String()
}

// rest makes one REST call and returns its decoded answer.
func rest(t *testing.T, addr, method, path string, body any) map[string]any {
	t.Helper()
	var in io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		in = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, "http://"+addr+path, in)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s answered HTTP %d, not JSON: %s", method, path, resp.StatusCode, raw)
	}
	out["http"] = float64(resp.StatusCode)
	return out
}

// restOK makes a REST call that must succeed and returns its data.
func restOK(t *testing.T, addr, method, path string, body any) any {
	t.Helper()
	out := rest(t, addr, method, path, body)
	if out["code"] != float64(200) || out["http"] != float64(200) {
		t.Fatalf("%s %s %v: %v", method, path, body, out)
	}
	return out["data"]
}

// A client of Milvus's RESTful API pointed at the proxy has its calls
// carried: collections made, rows of every type the API takes inserted,
// upserted and deleted, each write captured and replayed on the target,
// which ends equal to the source; reads answered as the cluster itself
// answers them; bad input refused with Milvus's codes, changing nothing;
// calls outside the v1 API refused with a message that says so.
func TestRESTCallsThroughTheProxyAreCarriedAndCaptured(t *testing.T) {
	// The v1 API makes collections with keys the source assigns: the
	// migration keeps them (preserve_keys).
	bed, store, ctx := milvustest.Empty(t), estest.NewStore(t), context.Background()
	b := &syncBed{bed: bed, src: milvustest.Dial(t, bed.Source), dst: milvustest.Dial(t, bed.Target), id: "m-rest",
		journal: estest.Journal(t, store), intents: estest.KV(t, store, "TEST_INTENTS"), options: domain.Options{AutoID: domain.AutoIDPreserveKeys}}
	b.applier = livesync.NewApplier(b.id, b.journal, b.src, b.dst, estest.KV(t, store, "TEST_APPLY"), true,
		func(string, string) bool { return true }, func(err error) { t.Error(err) }, nil)
	addr, src := b.serveEndpoint(t), b.bed.Source

	// The v1 API's quick collection, and one of every type made over gRPC.
	restOK(t, addr, "POST", "/v1/vector/collections/create", map[string]any{"collectionName": "quick", "dimension": 4, "metricType": "IP"})
	typed := &schemapb.CollectionSchema{Name: "typed", EnableDynamicField: true, Fields: []*schemapb.FieldSchema{
		{Name: "pk", DataType: schemapb.DataType_VarChar, IsPrimaryKey: true, TypeParams: kv("max_length", "32")},
		{Name: "b", DataType: schemapb.DataType_Bool}, {Name: "i8", DataType: schemapb.DataType_Int8},
		{Name: "i16", DataType: schemapb.DataType_Int16}, {Name: "i32", DataType: schemapb.DataType_Int32},
		{Name: "i64", DataType: schemapb.DataType_Int64}, {Name: "f", DataType: schemapb.DataType_Float},
		{Name: "d", DataType: schemapb.DataType_Double}, {Name: "s", DataType: schemapb.DataType_VarChar, TypeParams: kv("max_length", "64")},
		{Name: "j", DataType: schemapb.DataType_JSON},
		{Name: "arr", DataType: schemapb.DataType_Array, ElementType: schemapb.DataType_Int64, TypeParams: kv("max_capacity", "4")},
		{Name: "v", DataType: schemapb.DataType_FloatVector, TypeParams: kv("dim", "4")},
	}}
	proxied := milvustest.Dial(t, addr)
	if err := proxied.CreateCollection(ctx, "", typed, milvus.CollectionSettings{Shards: 1, Level: commonpb.ConsistencyLevel_Strong}); err != nil {
		t.Fatal(err)
	}
	if err := proxied.CreateIndex(ctx, "", "typed", milvus.Index{Name: "v", Field: "v", Params: map[string]string{"index_type": "FLAT", "metric_type": "L2"}}); err != nil {
		t.Fatal(err)
	}
	if err := proxied.Load(ctx, "", "typed"); err != nil {
		t.Fatal(err)
	}
	bare := &schemapb.CollectionSchema{Name: "bare", Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "v", DataType: schemapb.DataType_BinaryVector, TypeParams: kv("dim", "16")},
	}}
	if err := proxied.CreateCollection(ctx, "", bare, milvus.CollectionSettings{Shards: 1}); err != nil {
		t.Fatal(err)
	}

	// Writes.
	var quickRows, typedRows []map[string]any
	for i := range 20 {
		quickRows = append(quickRows, map[string]any{"vector": []float64{float64(i), 0.5, -1.25, 3}, "tag": fmt.Sprintf("t%d", i), "n": i})
		typedRows = append(typedRows, map[string]any{"pk": fmt.Sprintf("k%02d", i), "b": i%2 == 0, "i8": -128 + i, "i16": 32767 - i,
			"i32": -2147483648 + i, "i64": fmt.Sprint(int64(9007199254740993) + int64(i)), "f": 0.1 * float64(i), "d": 1e300 / float64(i+1),
			"s": fmt.Sprintf("ünï %d", i), "j": map[string]any{"k": []any{i, "x"}, "big": 12345678901234567}, "arr": []int{i, -i},
			"v": []float64{1, 2, 3, float64(i)}, "extra": map[string]any{"deep": i}})
	}
	ids := restOK(t, addr, "POST", "/v1/vector/insert", map[string]any{"collectionName": "quick", "data": quickRows}).(map[string]any)
	if ids["insertCount"] != float64(20) || len(ids["insertIds"].([]any)) != 20 {
		t.Fatalf("quick insert answered %v", ids)
	}
	restOK(t, addr, "POST", "/v1/vector/insert", map[string]any{"collectionName": "typed", "data": typedRows})
	typedRows[3]["s"], typedRows[4]["i64"] = "changed", "-5"
	up := restOK(t, addr, "POST", "/v1/vector/upsert", map[string]any{"collectionName": "typed", "data": typedRows[3:5]}).(map[string]any)
	if up["upsertCount"] != float64(2) {
		t.Fatalf("upsert answered %v", up)
	}
	restOK(t, addr, "POST", "/v1/vector/upsert", map[string]any{"collectionName": "typed", "data": typedRows[7]}) // one row, not a list
	restOK(t, addr, "POST", "/v1/vector/delete", map[string]any{"collectionName": "typed", "id": []string{"k00", "k01"}})
	restOK(t, addr, "POST", "/v1/vector/delete", map[string]any{"collectionName": "quick", "id": ids["insertIds"].([]any)[0]})

	// Bad input: Milvus's codes, the field named, nothing written.
	for _, c := range []struct {
		body any
		code float64
		says string
	}{
		{map[string]any{"collectionName": "typed", "data": []any{map[string]any{"pk": "bad", "b": "yes"}}}, 1804, "field b"},
		{map[string]any{"collectionName": "typed", "data": []any{map[string]any{"pk": "bad", "b": true}}}, 1804, "no value for field i8"},
		{map[string]any{"collectionName": "quick", "data": []any{map[string]any{"vector": []int{1, 2}}}}, 1804, "field vector"},
		{map[string]any{"data": quickRows}, 1802, "collectionName"},
		{"{not json", 1801, "json"},
	} {
		out := rest(t, addr, "POST", "/v1/vector/insert", c.body)
		if out["code"] != c.code || !strings.Contains(fmt.Sprint(out["message"]), c.says) {
			t.Errorf("insert %v answered %v; want code %v naming %q", c.body, out, c.code, c.says)
		}
	}
	if out := rest(t, addr, "GET", "/v2/vectordb/collections/list", nil); out["http"] != float64(501) || !strings.Contains(fmt.Sprint(out["message"]), "/v1/vector") {
		t.Errorf("a call outside the v1 API answered %v", out)
	}

	// Reads answer as the cluster does.
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/v1/vector/collections", nil},
		{"GET", "/v1/vector/collections/describe?collectionName=quick", nil},
		{"GET", "/v1/vector/collections/describe?collectionName=typed", nil},
		{"POST", "/v1/vector/query", map[string]any{"collectionName": "typed", "filter": "i8 < 0",
			"outputFields": []string{"pk", "b", "i8", "i16", "i32", "i64", "f", "d", "s", "v", "extra"}}},
		{"POST", "/v1/vector/query", map[string]any{"collectionName": "quick", "filter": "n >= 0", "limit": 5, "offset": 2}},
		{"POST", "/v1/vector/query", map[string]any{"collectionName": "quick", "filter": "n >= 0", "outputFields": []string{"n"}}},
		{"POST", "/v1/vector/get", map[string]any{"collectionName": "quick", "id": ids["insertIds"].([]any)[1:4], "outputFields": []string{"tag"}}},
		{"POST", "/v1/vector/search", map[string]any{"collectionName": "quick", "vector": []float64{1, 1, 1, 1}, "limit": 3, "outputFields": []string{"n", "vector"}}},
		{"POST", "/v1/vector/search", map[string]any{"collectionName": "typed", "vector": []float64{1, 2, 3, 4}, "filter": "i16 > 0", "outputFields": []string{"s", "i64"}}},
		{"GET", "/v1/vector/collections/describe?collectionName=none", nil},
		{"GET", "/v1/vector/collections/describe?collectionName=bare", nil}, // no index, not loaded
		{"POST", "/v1/vector/query", map[string]any{"collectionName": "bare", "filter": "id > 0"}},
	} {
		via, direct := rest(t, addr, c.method, c.path, c.body), rest(t, src, c.method, c.path, c.body)
		if c.path == "/v1/vector/collections" {
			// Milvus lists collections in no set order.
			for _, out := range []map[string]any{via, direct} {
				if names, ok := out["data"].([]any); ok {
					sort.Slice(names, func(i, j int) bool { return fmt.Sprint(names[i]) < fmt.Sprint(names[j]) })
				}
			}
		}
		if !reflect.DeepEqual(via, direct) {
			t.Errorf("%s %s %v\nthrough the proxy: %v\nthe cluster:       %v", c.method, c.path, c.body, via, direct)
		}
	}

	// Milvus 2.3's own REST API gives JSON fields as base64 and arrays as
	// protobuf structures; the proxy gives them as the values they hold.
	got := restOK(t, addr, "POST", "/v1/vector/get", map[string]any{"collectionName": "typed", "id": "k02", "outputFields": []string{"j", "arr"}})
	if want := []any{map[string]any{"pk": "k02", "j": map[string]any{"k": []any{2.0, "x"}, "big": 12345678901234567.0}, "arr": []any{"2", "-2"}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("get k02's JSON and array: %v; want %v", got, want)
	}

	b.apply(t)
	b.drain(t)
	sameThroughZdm(t, b.src, b.dst, "after the REST writes were replayed")
	// Made without an index, bare cannot be loaded: its rows are not
	// compared, and the report says so.
	rep, err := verify.Verify(ctx, b.src, b.dst, verify.Options{})
	if err != nil || !reflect.DeepEqual(rep.NotLoaded, []string{"default/bare"}) || !strings.Contains(rep.Summary(), "not compared") {
		t.Errorf("verification: %v %v %q", err, rep.NotLoaded, rep.Summary())
	}
	if n, err := b.dst.CountWhere(ctx, "", "typed", `pk != ""`); err != nil || n != 18 {
		t.Errorf("typed rows on the target: %d, %v; want 18", n, err)
	}
}

func kv(k, v string) []*commonpb.KeyValuePair { return []*commonpb.KeyValuePair{{Key: k, Value: v}} }
