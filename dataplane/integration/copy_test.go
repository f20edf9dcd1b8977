package integration_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/dataplane/verify"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/domain/domaintest"
)

type endpoints map[string]string

func (e endpoints) Endpoint(_ context.Context, id string) (milvus.Endpoint, error) {
	return milvus.Endpoint{Address: e[id]}, nil
}

// planFor runs Plan for a migration from src to dst that keeps autoID
// keys.
func planFor(c *rowcopy.Copier) (*domain.Migration, domain.CopyStarted, error) {
	m := domaintest.Migration("m-copytest", "")
	m.TargetCluster = domain.TargetProvisioned{ClusterID: "dst"}
	m.Source.ID = "src"
	m.Options.AutoID = domain.AutoIDPreserveKeys
	plan, err := c.Plan(context.Background(), m)
	return m, plan, err
}

// preflightRefusal runs Plan and returns the refusal; the test fails if
// the preflight refused nothing.
func preflightRefusal(t *testing.T, c *rowcopy.Copier) string {
	t.Helper()
	_, _, err := planFor(c)
	var se *domain.StepError
	if !errors.As(err, &se) || se.Reason != "preflight_refused" {
		t.Fatalf("plan: %v; want preflight_refused", err)
	}
	return err.Error()
}

// planned runs Plan and folds its plan into a migration, as the saga would.
func planned(t *testing.T, c *rowcopy.Copier) *domain.Migration {
	t.Helper()
	m, plan, err := planFor(c)
	if err != nil {
		t.Fatal(err)
	}
	m.State = domain.StateTargetProvisioned
	m2 := domain.NewMigration()
	for i, e := range []domain.Event{domain.MigrationRequested{ID: m.ID, Source: m.Source, Options: m.Options}, domain.Locked{},
		domain.ProvisioningStarted{}, m.TargetCluster, plan} {
		if err := m2.Apply(domain.Record{Seq: uint64(i + 1), At: time.Now(), Event: e}); err != nil {
			t.Fatal(err)
		}
	}
	return m2
}

func TestCopySkipsACollectionDroppedMidCopy(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src := milvustest.Dial(t, bed.Source)
	milvustest.Seed(t, src, datatools.Shape{Databases: 1, Collections: 2, Rows: 3000, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "drop_"})
	// One collection prepared at a time: drop_c0's ranges are copied first,
	// so drop_c1 is dropped before any of its own are.
	c := rowcopy.NewCopier(endpoints{"src": bed.Source, "dst": bed.Target}, rowcopy.Config{Workers: 1, PageRows: 500, RangeRows: 1000, Planners: 1}, nil)
	m := planned(t, c)
	var mu sync.Mutex
	var got []domain.BulkCopyProgressed
	dropped := false
	err := c.Copy(ctx, m, func(ctx context.Context, p domain.BulkCopyProgressed) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, p)
		if !dropped && p.Collection == "drop_c0" && p.Range != "" {
			dropped = true
			if _, err := src.Service().DropCollection(src.In(ctx, "drop_db0"), dropRequest("drop_db0", "drop_c1")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var skipped, done0 bool
	for _, p := range got {
		skipped = skipped || (p.Collection == "drop_c1" && strings.Contains(p.Skipped, "dropped"))
		done0 = done0 || (p.Collection == "drop_c0" && p.Done)
	}
	if !skipped || !done0 {
		t.Fatalf("checkpoints: %+v", got)
	}
	// The collection that stayed is on the target whole, every row as on
	// the source; the dropped one is not copied whole.
	dst := milvustest.Dial(t, bed.Target)
	if n, err := dst.CountWhere(ctx, "drop_db0", "drop_c0", ""); err != nil || n != 3000 {
		t.Fatalf("drop_c0 on the target: %d rows (%v)", n, err)
	}
	rep, err := verify.Verify(ctx, src, dst, verify.Options{SampleEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Collections {
		if c.Collection == "drop_c0" && !c.Equal {
			t.Fatalf("drop_c0 differs on the target: %+v", c)
		}
	}
	if has, err := dst.HasCollection(ctx, "drop_db0", "drop_c1"); err != nil {
		t.Fatal(err)
	} else if has {
		if n, err := dst.CountWhere(ctx, "drop_db0", "drop_c1", ""); err == nil && n == 3000 {
			t.Fatal("the collection dropped mid-copy was copied whole")
		}
	}
}

func TestCopyToAnUnreachableTargetSaysSo(t *testing.T) {
	bed := milvustest.Require(t)
	milvustest.Reset(t, bed.Source)
	c := rowcopy.NewCopier(endpoints{"src": bed.Source, "dst": "127.0.0.1:1"}, rowcopy.Config{}, nil)
	m := domain.NewMigration()
	m.Source.ID, m.TargetCluster.ClusterID = "src", "dst"
	_, err := c.Plan(context.Background(), m)
	var se *domain.StepError
	if !errors.As(err, &se) || se.Reason != "target_unreachable" || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("got %v", err)
	}
}

// A source that does not answer fails the check before provisioning and
// the plan with source_unreachable, naming its address.
func TestAnUnreachableSourceSaysSo(t *testing.T) {
	c := rowcopy.NewCopier(endpoints{"src": "127.0.0.1:1", "dst": "127.0.0.1:1"}, rowcopy.Config{}, nil)
	m := domain.NewMigration()
	m.Source.ID, m.TargetCluster.ClusterID = "src", "dst"
	_, planned := c.Plan(context.Background(), m)
	for step, err := range map[string]error{"check": c.CheckSource(context.Background(), m), "plan": planned} {
		var se *domain.StepError
		if !errors.As(err, &se) || se.Reason != "source_unreachable" || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Fatalf("%s: got %v, want source_unreachable naming the address", step, err)
		}
	}
}

func TestVerificationNamesPlantedDifferences(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src, dst := milvustest.Dial(t, bed.Source), milvustest.Dial(t, bed.Target)
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 5000, Dim: 8, PKType: "int64", Dynamic: true, Index: "FLAT", Load: true, Shards: 1, Prefix: "v_"}
	milvustest.Seed(t, src, shape)
	c := rowcopy.NewCopier(endpoints{"src": bed.Source, "dst": bed.Target}, rowcopy.Config{}, nil)
	m := planned(t, c)
	if err := c.Copy(ctx, m, func(context.Context, domain.BulkCopyProgressed) error { return nil }); err != nil {
		t.Fatal(err)
	}
	rep, err := verify.Verify(ctx, src, dst, verify.Options{})
	if err != nil || !rep.Equal {
		t.Fatalf("after the copy: %+v %v", rep, err)
	}
	// A changed vector, a missing row and an extra row.
	schema := datatools.Shape{Dim: 8, PKType: "int64", Dynamic: true}.Schema("v_c0")
	gen := milvus.RowGen{Schema: schema, Rand: milvustest.NewRand()}
	cols, _ := src.Query(ctx, "v_db0", "v_c0", "id == 4321", []string{"id", "n", "s", "v", "$meta"}, nil, 0)
	for _, col := range cols {
		if col.GetFieldName() == "v" {
			col.GetVectors().GetFloatVector().GetData()[3] += 0.5
		}
		if col.GetFieldName() == "$meta" {
			col.IsDynamic = true
		}
	}
	if _, err := dst.Upsert(ctx, "v_db0", "v_c0", "", cols, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Delete(ctx, "v_db0", "v_c0", "", "id in [17]"); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Insert(ctx, "v_db0", "v_c0", "", gen.Columns(1, milvus.Keys{Ints: []int64{999999}}, func(int) int64 { return 1 }), 1); err != nil {
		t.Fatal(err)
	}
	rep, err = verify.Verify(ctx, src, dst, verify.Options{SampleEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	cr := rep.Collections[0]
	joined := strings.Join(cr.Mismatches, "; ")
	if rep.Equal || cr.Missing != 1 || cr.Extra != 1 || cr.Different != 1 ||
		!strings.Contains(joined, "17 missing on the target") || !strings.Contains(joined, "999999 only on the target") ||
		!strings.Contains(joined, "4321 differs") || !strings.Contains(joined, "4321 vector v differs") {
		t.Fatalf("report: %+v", cr)
	}
}

func TestAPlanRefusesATargetThatAlreadyHoldsRowsOfTheSource(t *testing.T) {
	bed := milvustest.Empty(t)
	shape := datatools.Shape{Databases: 1, Collections: 2, Rows: 100, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "held_"}
	milvustest.Seed(t, milvustest.Dial(t, bed.Source), shape)
	// On the target: one collection with rows, one empty (harmless).
	dst := milvustest.Dial(t, bed.Target)
	milvustest.Seed(t, dst, datatools.Shape{Databases: 1, Collections: 1, Rows: 100, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "held_"})
	if err := dst.CreateCollection(context.Background(), "held_db0", shape.Schema("held_c1"), milvus.CollectionSettings{Shards: 1}); err != nil {
		t.Fatal(err)
	}
	c := rowcopy.NewCopier(endpoints{"src": bed.Source, "dst": bed.Target}, rowcopy.Config{}, nil)
	m := domain.NewMigration()
	m.Source.ID, m.TargetCluster.ClusterID = "src", "dst"
	_, err := c.Plan(context.Background(), m)
	var se *domain.StepError
	if !errors.As(err, &se) || se.Reason != "preflight_refused" || !strings.Contains(err.Error(), "held_db0/held_c0") || strings.Contains(err.Error(), "held_db0/held_c1") {
		t.Fatalf("a plan onto a target holding rows of held_c0: %v", err)
	}
}

func TestManyCollectionsOfNewDatabasesCopyWholeWithFourPlanners(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src, dst := milvustest.Dial(t, bed.Source), milvustest.Dial(t, bed.Target)
	milvustest.Seed(t, src, datatools.Shape{Databases: 2, Collections: 5, Rows: 700, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "par_"})
	// Unloaded ones are loaded for the plan and the copy, several at a
	// time, and released after.
	milvustest.Seed(t, src, datatools.Shape{Databases: 1, Collections: 3, Rows: 500, Dim: 8, PKType: "varchar", Index: "FLAT", Shards: 1, Prefix: "paru_"})
	c := rowcopy.NewCopier(endpoints{"src": bed.Source, "dst": bed.Target}, rowcopy.Config{Workers: 2, PageRows: 300, RangeRows: 300, Planners: 4}, nil)
	m := planned(t, c)
	if len(m.Collections) != 13 {
		t.Fatalf("%d collections planned, want 13", len(m.Collections))
	}
	var mu sync.Mutex
	done := map[string]bool{}
	rows := map[string]int64{}
	plans := map[string][]*domain.CollectionPlan{}
	err := c.Copy(ctx, m, func(_ context.Context, p domain.BulkCopyProgressed) error {
		mu.Lock()
		defer mu.Unlock()
		k := p.Database + "/" + p.Collection
		if p.Plan != nil {
			plans[k] = append(plans[k], p.Plan)
			return nil
		}
		if len(plans[k]) == 0 {
			t.Errorf("%s: range %s copied before the collection's plan was recorded", k, p.Range)
		}
		rows[k] += p.Rows
		done[k] = done[k] || p.Done
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Collections {
		k := p.Database + "/" + p.Collection
		if len(plans[k]) != 1 {
			t.Fatalf("%s: planned %d times, want once", k, len(plans[k]))
		}
		if pl := plans[k][0]; !done[k] || rows[k] != pl.Rows || pl.Rows == 0 || pl.ReadTS == 0 || len(pl.Ranges) < 2 {
			t.Errorf("%s: done %v, %d rows checkpointed; its plan: %d rows, %d ranges, read at %d", k, done[k], rows[k], pl.Rows, len(pl.Ranges), pl.ReadTS)
		}
	}
	rep, err := verify.Verify(ctx, src, dst, verify.Options{SampleEvery: 1})
	if err != nil || !rep.Equal {
		t.Fatalf("after the copy: %s %v", rep.Summary(), err)
	}
	for i := range 3 {
		col, err := src.Structure(ctx, "paru_db0", fmt.Sprintf("paru_c%d", i))
		if err != nil || col.Loaded {
			t.Fatalf("paru_c%d on the source after the copy: loaded %v (%v), want released as it was", i, col != nil && col.Loaded, err)
		}
	}
}

// Under a rate limit a page holds at most a second's worth of rows, so a
// range is read in several pages; the copy still moves every row once,
// and follows a lifted limit.
func TestALimitedCopyReadsSmallPagesAndMovesEveryRowOnce(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src, dst := milvustest.Dial(t, bed.Source), milvustest.Dial(t, bed.Target)
	milvustest.Seed(t, src, datatools.Shape{Databases: 1, Collections: 1, Rows: 5000, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "lim_"})
	c := rowcopy.NewCopier(endpoints{"src": bed.Source, "dst": bed.Target}, rowcopy.Config{RangeRows: 2500}, nil)
	var reads sync.Map
	limit := int64(1000)
	var mu sync.Mutex
	c.FollowRateLimit(func(_ context.Context, id string) (int64, error) {
		reads.Store(id, true)
		mu.Lock()
		defer mu.Unlock()
		return limit, nil
	})
	m := planned(t, c)
	m.Options.CopyRateLimit = limit
	var ranges int
	var rows int64
	err := c.Copy(ctx, m, func(_ context.Context, p domain.BulkCopyProgressed) error {
		mu.Lock()
		defer mu.Unlock()
		if p.Range != "" {
			ranges++
			rows += p.Rows
			limit = 0 // lifted after the first range: the rest goes unlimited
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := reads.Load(m.ID); !ok {
		t.Fatal("the copy never read its migration's limit")
	}
	if rows != 5000 || ranges < 2 {
		t.Fatalf("%d rows in %d ranges checkpointed, want 5000 in 2 or more", rows, ranges)
	}
	rep, err := verify.Verify(ctx, src, dst, verify.Options{SampleEvery: 1})
	if err != nil || !rep.Equal {
		t.Fatalf("after the copy: %s %v", rep.Summary(), err)
	}
}

// recordInto folds a copy's checkpoints into m as the saga would, under mu.
func recordInto(mu *sync.Mutex, m *domain.Migration) func(context.Context, domain.BulkCopyProgressed) error {
	return func(_ context.Context, p domain.BulkCopyProgressed) error {
		mu.Lock()
		defer mu.Unlock()
		events, err := domain.Decide(m, domain.RecordCopyProgress{Progress: p})
		for _, e := range events {
			if err == nil {
				err = m.Apply(domain.Record{Seq: m.Seq() + 1, At: time.Now(), Event: e})
			}
		}
		return err
	}
}
