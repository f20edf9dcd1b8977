package e2e

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	st "github.com/zdm-io/zdm/service/servicetest"
)

// R5: a source with a bulk import in progress cannot be migrated; once the
// import has ended, it can.
func TestSourceWithABulkImportInProgressIsRefused(t *testing.T) {
	e := newEnv(t, "")
	p := e.serve(t)
	src, _ := e.register(t, p, nil)
	ctx := context.Background()

	c := milvustest.Dial(t, e.bed.Source)
	schema := &schemapb.CollectionSchema{Name: "imported", Fields: []*schemapb.FieldSchema{
		{FieldID: 100, Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{FieldID: 101, Name: "v", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "16"}}},
	}}
	if err := c.CreateCollection(ctx, "default", schema, milvus.CollectionSettings{Shards: 1}); err != nil {
		t.Fatal(err)
	}
	// Milvus 2.3 loads (and so reads) only an indexed collection.
	if err := c.CreateIndex(ctx, "default", "imported", milvus.Index{Name: "v_idx", Field: "v",
		Params: map[string]string{"index_type": "FLAT", "metric_type": "L2"}}); err != nil {
		t.Fatal(err)
	}
	// The file must be where the server reads local storage.
	file := filepath.Join(e.bed.DataDir("source"), "zdm-import-test.json")
	writeImportFile(t, file, 20000)
	tasks, err := c.Import(ctx, "default", "imported", []string{file})
	if err != nil || len(tasks) == 0 {
		t.Fatalf("import: %v %v", tasks, err)
	}

	id := start(t, p, src, nil)
	var m st.Migration
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) && m.State != "failed" {
		p.Call(t, "GET", "/v1/migrations/"+id, nil, &m)
		time.Sleep(50 * time.Millisecond)
	}
	if m.State != "failed" || m.FailureReason != "source_import_running" || !strings.Contains(m.FailureDetail, "import task") {
		t.Fatalf("migration of a source with an import in progress: %+v", m)
	}
	if types := eventTypes(t, p, id); count(types, "provisioning_started") != 0 {
		t.Fatalf("a target was provisioned for a refused source: %v", types)
	}

	// Once the import has ended, the source can be migrated.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		running, err := c.RunningImports(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(running) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("import still running: %v", running)
		}
	}
	id = start(t, p, src, nil)
	p.WaitFor(t, id, waitTimeout(), func(m st.Migration) bool { return m.State == "copying" || m.State == "syncing" })
	if code := p.Call(t, "POST", "/v1/migrations/"+id+"/cancel", nil, nil); code != 202 {
		t.Fatalf("cancel: %d", code)
	}
}

func writeImportFile(t *testing.T, path string, rows int) {
	t.Helper()
	type row struct {
		ID int64     `json:"id"`
		V  []float32 `json:"v"`
	}
	r := rand.New(rand.NewPCG(7, 7))
	out := struct {
		Rows []row `json:"rows"`
	}{}
	for i := range rows {
		v := make([]float32, 16)
		for j := range v {
			v[j] = r.Float32()
		}
		out.Rows = append(out.Rows, row{ID: int64(i), V: v})
	}
	data, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
}
