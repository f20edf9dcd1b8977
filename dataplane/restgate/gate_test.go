package restgate

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

func schema() *schemapb.CollectionSchema {
	kv := func(k, v string) []*commonpb.KeyValuePair { return []*commonpb.KeyValuePair{{Key: k, Value: v}} }
	return &schemapb.CollectionSchema{EnableDynamicField: true, Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true, AutoID: true},
		{Name: "i8", DataType: schemapb.DataType_Int8},
		{Name: "i64", DataType: schemapb.DataType_Int64},
		{Name: "f", DataType: schemapb.DataType_Float},
		{Name: "j", DataType: schemapb.DataType_JSON},
		{Name: "arr", DataType: schemapb.DataType_Array, ElementType: schemapb.DataType_VarChar},
		{Name: "bv", DataType: schemapb.DataType_BinaryVector, TypeParams: kv("dim", "16")},
		{Name: milvus.DynamicFieldName, DataType: schemapb.DataType_JSON, IsDynamic: true},
	}}
}

func rowsFrom(t *testing.T, text string) []map[string]any {
	t.Helper()
	var rows []map[string]any
	if err := unmarshal([]byte(text), &rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

// Rows become the schema's columns, values exact, the key the source
// assigns left to it on insert, the rest in the dynamic field; and come
// back as Milvus's REST API shows them.
func TestRowsBecomeColumnsAndComeBack(t *testing.T) {
	rows := rowsFrom(t, `[{"i8":-128,"i64":"9007199254740993","f":0.1,"j":{"a":[1,"x"]},"arr":["p","q"],"bv":[1,255],"tag":"x","n":12345678901234567},
		{"id":7,"i8":127,"i64":-1,"f":2,"j":null,"arr":[],"bv":"AQI=","tag":"y"}]`)
	rows[1]["j"] = []any{} // a JSON null is no value; an empty list is
	cols, err := toColumns(schema(), rows, false)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, c := range cols {
		names = append(names, c.GetFieldName())
	}
	if want := []string{"i8", "i64", "f", "j", "arr", "bv", "$meta"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("columns %v; want %v (no auto-generated key on insert)", names, want)
	}
	if got := milvus.Column(cols, "i64").GetScalars().GetLongData().GetData(); got[0] != 9007199254740993 || got[1] != -1 {
		t.Errorf("i64 %v", got)
	}
	if got := milvus.Column(cols, "bv").GetVectors().GetBinaryVector(); !reflect.DeepEqual(got, []byte{1, 255, 1, 2}) {
		t.Errorf("bv %v", got)
	}
	dyn := milvus.Column(cols, "$meta")
	if !dyn.GetIsDynamic() || string(dyn.GetScalars().GetJsonData().GetData()[0]) != `{"n":12345678901234567,"tag":"x"}` {
		t.Errorf("dynamic field %v", dyn)
	}
	if up, err := toColumns(schema(), rows[1:], true); err != nil || milvus.Column(up, "id") == nil {
		t.Errorf("an upsert keeps its key: %v", err)
	}

	back := rowsOf(cols, 2, []string{"i64", "bv", "tag"})
	if back[0]["i64"] != "9007199254740993" || back[0]["f"] != float32(0.1) {
		t.Errorf("row 0 came back as %v", back[0])
	}
	out, _ := json.Marshal(back[1])
	if want := `{"arr":[],"bv":"AQI=","f":2,"i64":"-1","i8":127,"j":[],"tag":"y"}`; string(out) != want {
		t.Errorf("row 1 came back as %s; want %s (only the dynamic keys asked for)", out, want)
	}
}

// Input that does not fit the schema is refused, naming the row and the
// field.
func TestRowsThatDoNotFitAreRefusedNamingTheField(t *testing.T) {
	for text, says := range map[string]string{
		`[{"i8":128,"i64":1,"f":1,"j":{},"arr":[],"bv":[1,2]}]`:   "field i8: row 0: 128 is not an integer of 8 bits",
		`[{"i8":1,"i64":1.5,"f":1,"j":{},"arr":[],"bv":[1,2]}]`:   "field i64: row 0: 1.5 is not an integer",
		`[{"i8":1,"i64":1,"f":"x","j":{},"arr":[],"bv":[1,2]}]`:   "field f: row 0: x is not a number",
		`[{"i8":1,"i64":1,"f":1,"j":{},"arr":[1],"bv":[1,2]}]`:    "field arr: row 0: row 0: 1 is not a string",
		`[{"i8":1,"i64":1,"f":1,"j":{},"arr":[],"bv":[1,2,3]}]`:   "field bv: row 0: want 2 bytes, got 3",
		`[{"i8":1,"i64":1,"f":1,"j":{},"arr":[],"bv":[1,256]}]`:   "field bv: row 0: 256 is not a byte",
		`[{"i8":1,"i64":1,"f":1,"j":{},"arr":[]}]`:                "row 0 has no value for field bv",
		`[{"i8":1,"i64":1,"f":1e39,"j":{},"arr":[],"bv":"AQI="}]`: "field f: row 0: 1e39 is not a number of 32 bits",
	} {
		_, err := toColumns(schema(), rowsFrom(t, text), false)
		var ae *apiError
		if err == nil || !strings.Contains(err.Error(), says) || !errors.As(err, &ae) || ae.code != codeBadData {
			t.Errorf("%s: %v; want code %d saying %q", text, err, codeBadData, says)
		}
	}
}

// HTTP credentials become the metadata an SDK sends.
func TestCredentialsBecomeAnSDKsMetadata(t *testing.T) {
	want := base64.StdEncoding.EncodeToString([]byte("root:Milvus"))
	basic := httptest.NewRequest("GET", "/", nil)
	basic.SetBasicAuth("root", "Milvus")
	bearer := httptest.NewRequest("GET", "/", nil)
	bearer.Header.Set("Authorization", "Bearer root:Milvus")
	for _, r := range []*http.Request{basic, bearer} {
		if got := credentials(r).Get("authorization"); len(got) != 1 || got[0] != want {
			t.Errorf("%q gave %v", r.Header.Get("Authorization"), got)
		}
	}
	if got := credentials(httptest.NewRequest("GET", "/", nil)); len(got) != 0 {
		t.Errorf("no credentials gave %v", got)
	}
}

// Calls outside the v1 API, and v1 paths with another method, go to the
// handler that refuses them.
func TestCallsOutsideTheV1APIAreNotCarried(t *testing.T) {
	h := New(nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotImplemented) }))
	for _, c := range [][2]string{{"GET", "/v2/vectordb/collections/list"}, {"GET", "/v1/vector/insert"}, {"POST", "/"}} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(c[0], c[1], nil))
		if w.Code != http.StatusNotImplemented {
			t.Errorf("%s %s answered %d", c[0], c[1], w.Code)
		}
	}
}

// Whatever a client sends as rows, the gate answers it without panicking,
// and what it takes comes back as rows.
func FuzzRows(f *testing.F) {
	f.Add(`[{"i8":1,"i64":"2","f":1.5,"j":{"a":1},"arr":["x"],"bv":"AQI=","k":null}]`)
	f.Add(`{"i8":[],"i64":{},"f":"1","j":[],"arr":[[]],"bv":[1,2,3]}`)
	f.Fuzz(func(t *testing.T, text string) {
		b := writeBody{Data: json.RawMessage(text)}
		rows, err := b.rows()
		if err != nil {
			return
		}
		cols, err := toColumns(schema(), rows, true)
		if err != nil {
			return
		}
		if back := rowsOf(cols, len(rows), nil); len(back) != len(rows) {
			t.Fatalf("%d rows came back as %d", len(rows), len(back))
		}
	})
}
