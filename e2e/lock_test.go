package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-sdk-go/v2/client"
	"github.com/milvus-io/milvus-sdk-go/v2/entity"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	st "github.com/zdm-io/zdm/service/servicetest"
)

func lockEnv(t *testing.T) (e *env, p *st.Proc, src, dst string) {
	e = newEnv(t, "  fingerprint_every: 2s\n")
	seed(t, e.bed.Source, datatools.Shape{Databases: 1, Collections: 1, Rows: 2000, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Prefix: "lock_"})
	p = e.serve(t)
	src, dst = e.register(t, p, map[string]any{"proxy_listen": proxyAddr})
	return e, p, src, dst
}

func sdk(t *testing.T, addr, db string) client.Client {
	c, err := client.NewClient(context.Background(), client.Config{Address: addr, DBName: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestLockRejectsForbiddenOperationsAndReplaysAllowedDDL(t *testing.T) {
	e, p, src, dst := lockEnv(t)
	// The spare has a proxy of its own, as every cluster of a site may.
	targetProxy := st.FreeAddr(t)
	if code := p.Call(t, "PATCH", "/v1/clusters/"+dst, map[string]any{"proxy_listen": targetProxy}, nil); code != 200 {
		t.Fatalf("the spare's proxy: %d", code)
	}
	id := start(t, p, src, nil)
	p.WaitFor(t, id, waitTimeout(), func(m st.Migration) bool { return m.State == "syncing" })
	ctx := context.Background()
	c := sdk(t, proxyAddr, "lock_db0")

	// Until the switch only zdm writes to the target (R6): its own proxy
	// refuses a write naming the migration, and serves a read.
	tc := sdk(t, targetProxy, "lock_db0")
	if _, err := tc.Insert(ctx, "lock_c0", "", entity.NewColumnInt64("id", []int64{-7}), entity.NewColumnInt64("n", []int64{1}),
		entity.NewColumnVarChar("s", []string{"around zdm"}), entity.NewColumnFloatVector("v", 8, [][]float32{make([]float32, 8)})); err == nil ||
		!strings.Contains(err.Error(), "target of migration "+id) {
		t.Errorf("an insert through the target's own proxy mid-sync: %v, want a refusal naming migration %s", err, id)
	}
	if _, err := tc.Query(ctx, "lock_c0", nil, "id >= 0", []string{"id"}, client.WithLimit(1)); err != nil {
		t.Errorf("a query through the target's own proxy mid-sync: %v", err)
	}
	if n, err := milvustest.Dial(t, e.bed.Target).CountWhere(ctx, "lock_db0", "lock_c0", "id == -7"); err != nil || n != 0 {
		t.Errorf("the refused insert: %d rows on the target (%v)", n, err)
	}

	// Every forbidden operation, and Import, is refused as a Milvus server
	// refuses a request (an error status in its answer, which SDKs raise
	// at once and never retry), naming the migration (policy reject). The
	// proxy counts each refusal: a client that retried one would show as
	// more refusals than calls.
	forbidden := map[string]func() error{
		"CreateAlias":      func() error { return c.CreateAlias(ctx, "lock_c0", "new_alias") },
		"DropAlias":        func() error { return c.DropAlias(ctx, "any_alias") },
		"AlterAlias":       func() error { return c.AlterAlias(ctx, "lock_c0", "any_alias") },
		"RenameCollection": func() error { return c.RenameCollection(ctx, "lock_c0", "renamed") },
		"AlterCollection":  func() error { return c.AlterCollection(ctx, "lock_c0", entity.CollectionTTL(60)) },
		"AlterDatabase":    func() error { return c.AlterDatabase(ctx, "lock_db0", entity.DatabaseReplica(1)) },
		"Import": func() error {
			_, err := c.BulkInsert(ctx, "lock_c0", "", []string{"rows.json"})
			return err
		},
	}
	before, err := milvustest.Dial(t, e.bed.Source).Outline(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counted := refusals(t, p)
	var slowest time.Duration
	for name, op := range forbidden {
		began := time.Now()
		err := op()
		slowest = max(slowest, time.Since(began))
		if err == nil || status.Code(err) != codes.Unknown || !strings.Contains(errString(err), id) {
			t.Errorf("%s: got %v (gRPC code %v), want a Milvus error naming migration %s", name, err, status.Code(err), id)
		}
	}
	now := refusals(t, p)
	for name := range forbidden {
		if n := now[name] - counted[name]; n != 1 {
			t.Errorf("Go SDK %s: the proxy refused %v calls of one", name, n)
		}
	}
	t.Logf("Go SDK: %d refusals, the slowest in %s", len(forbidden), slowest.Round(time.Microsecond))
	// pymilvus raises the refusal at once, with a timeout or without.
	counted = now
	out, err := exec.Command(e.bed.Python, filepath.Join(e.bed.Root, "e2e", "testdata", "refusal.py"), proxyAddr, "lock_db0", "lock_c0").Output()
	if err != nil {
		t.Fatalf("refusal.py: %v", err)
	}
	slowestPy := 0.0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 4 || !strings.Contains(f[3], id) {
			t.Errorf("pymilvus: %q is not a refusal naming %s", line, id)
			continue
		}
		secs, _ := strconv.ParseFloat(f[1], 64)
		slowestPy = max(slowestPy, secs)
	}
	// refusal.py's calls, by the method each sends.
	pyCalls := map[string]float64{"CreateAlias": 2, "DropAlias": 1, "RenameCollection": 1, "Import": 1, "AlterCollection": 1}
	now = refusals(t, p)
	for name, calls := range pyCalls {
		if n := now[name] - counted[name]; n != calls {
			t.Errorf("pymilvus %s: the proxy refused %v calls of %v", name, n, calls)
		}
	}
	t.Logf("pymilvus: the slowest refusal in %.3fs", slowestPy)
	after, err := milvustest.Dial(t, e.bed.Source).Outline(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b, a := mustJSON(t, before), mustJSON(t, after); b != a {
		t.Errorf("a refused operation changed the source:\nbefore %s\nafter  %s", b, a)
	}
	var m st.Migration
	p.Call(t, "GET", "/v1/migrations/"+id, nil, &m)
	if m.State != "syncing" {
		t.Fatalf("a refused operation changed the migration: %+v", m)
	}

	// A collection created through the proxy mid-sync arrives with its rows.
	schema := entity.NewSchema().WithName("late").
		WithField(entity.NewField().WithName("id").WithDataType(entity.FieldTypeInt64).WithIsPrimaryKey(true)).
		WithField(entity.NewField().WithName("v").WithDataType(entity.FieldTypeFloatVector).WithDim(4))
	if err := c.CreateCollection(ctx, schema, 1); err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, 300)
	vecs := make([][]float32, 300)
	for i := range ids {
		ids[i], vecs[i] = int64(i), []float32{float32(i), 1, 2, 3}
	}
	if _, err := c.Insert(ctx, "late", "", entity.NewColumnInt64("id", ids), entity.NewColumnFloatVector("v", 4, vecs)); err != nil {
		t.Fatal(err)
	}
	idx, _ := entity.NewIndexFlat(entity.L2)
	if err := c.CreateIndex(ctx, "late", "v", idx, false); err != nil {
		t.Fatal(err)
	}
	if err := c.LoadCollection(ctx, "late", false); err != nil {
		t.Fatal(err)
	}
	target := milvustest.Dial(t, e.bed.Target)
	deadline := time.Now().Add(time.Minute)
	for {
		n, err := target.CountWhere(ctx, "lock_db0", "late", "")
		if err == nil && n == 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the collection created mid-sync is not on the target: %d rows, %v", n, err)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// A user made through the proxy mid-sync is made on the target: its
	// password, sealed in the journal, is opened by the applier.
	user := fmt.Sprintf("late_user_%d", time.Now().UnixNano())
	targetSDK := sdk(t, e.bed.Target, "default")
	t.Cleanup(func() {
		// Users outlive the bed's databases: the next run makes its own.
		_ = sdk(t, e.bed.Source, "default").DeleteCredential(ctx, user)
		_ = targetSDK.DeleteCredential(ctx, user)
	})
	if err := c.CreateCredential(ctx, user, "late-pass-1"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
		users, err := targetSDK.ListCredUsers(ctx)
		if err == nil && slices.Contains(users, user) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the user made mid-sync is not on the target: %v, %v", users, err)
		}
	}

	// The writes the proxy held back for the order of writes of the same
	// keys are exported.
	body, err := p.Get("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"zdm_proxy_key_waits_total ", "zdm_proxy_key_wait_seconds_total "} {
		if !strings.Contains(string(body), "\n"+name) {
			t.Errorf("/metrics has no %s", name)
		}
	}

	// An alias created around the proxy fails the migration, naming it.
	if err := sdk(t, e.bed.Source, "lock_db0").CreateAlias(ctx, "lock_c0", "sneaky"); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for {
		p.Call(t, "GET", "/v1/migrations/"+id, nil, &m)
		if m.State == "failed" {
			break
		}
		if time.Since(began) > 30*time.Second {
			t.Fatalf("an alias created around the proxy went unnoticed for 30s: %+v", m)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if m.FailureReason != "changed_around_proxy" || !strings.Contains(m.FailureDetail, "sneaky") {
		t.Fatalf("failure: %s %s", m.FailureReason, m.FailureDetail)
	}
	t.Logf("change around the proxy detected in %s: %s", time.Since(began).Round(time.Millisecond), m.FailureDetail)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestPolicyFailLetsTheOperationThroughAndFailsTheMigration(t *testing.T) {
	_, p, src, _ := lockEnv(t)
	id := start(t, p, src, map[string]any{"on_forbidden_op": "fail"})
	p.WaitFor(t, id, waitTimeout(), func(m st.Migration) bool { return m.State == "syncing" })
	if err := sdk(t, proxyAddr, "lock_db0").CreateAlias(context.Background(), "lock_c0", "through"); err != nil {
		t.Fatalf("policy fail refused the operation: %v", err)
	}
	var m st.Migration
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		p.Call(t, "GET", "/v1/migrations/"+id, nil, &m)
		if m.State == "failed" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if m.FailureReason != "forbidden_operation" || !strings.Contains(m.FailureDetail, "CreateAlias") {
		t.Fatalf("migration: %+v", m)
	}
}

// TestSwitchSurvivesAKillDuringTheHold kills zdmd while it holds the
// writes for the switch: the restarted zdmd completes the switch, and
// nothing is lost.
func TestSwitchSurvivesAKillDuringTheHold(t *testing.T) {
	e, p, src, _ := lockEnv(t)
	w := startWriter(t, proxyAddr, []datatools.CollectionName{{Database: "lock_db0", Collection: "lock_c0"}}, 80)
	id := start(t, p, src, nil)
	p.WaitFor(t, id, waitTimeout(), func(m st.Migration) bool { return m.State == "syncing" && m.LagSeconds != nil })
	time.Sleep(2 * time.Second)
	stopSyncKilledInTheHold(t, e, p, id)
	time.Sleep(2 * time.Second)
	stats := w.stop(t)
	rep := w.check(t, e.bed.Target)
	t.Logf("killed in the hold: %d writes acknowledged, %d failed while zdmd was down; target: %s", stats.Acknowledged, stats.Failed, rep)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// refusals reads the proxy's refusals by method from zdmd's metrics.
func refusals(t *testing.T, p *st.Proc) map[string]float64 {
	t.Helper()
	body, err := p.Get("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	const prefix = `zdm_proxy_refusals_total{method="`
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		method, value, _ := strings.Cut(rest, `"} `)
		n, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("/metrics: %q: %v", line, err)
		}
		out[method] = n
	}
	return out
}
