package integration_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/dataplane/verify"
	"github.com/zdm-io/zdm/domain"
)

// Two zdmd share a segment copy's partitions. The helper dies the moment
// a partition's import ended and before it recorded it, holding its
// claim: the driver takes the partition over once the claim expires,
// finds the import on the target and waits for it instead of importing
// again, and the target ends equal to the source, no row twice.
func TestTwoZdmdShareASegmentCopyAndOneDiesAfterAnImport(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src, dst := milvustest.Dial(t, bed.Source), milvustest.Dial(t, bed.Target)
	milvustest.Seed(t, src, datatools.Shape{Databases: 1, Collections: 2, Partitions: 3, Rows: 6000, Dim: 8, PKType: "int64",
		Index: "FLAT", Load: true, Shards: 1, Prefix: "segsh_"})
	// One planner each: the driver works through the partitions one at a
	// time, and the helper finds some nobody holds yet.
	pair := shareCopy(t, storageEndpoints{bed}, rowcopy.Config{Planners: 1})
	driver, h, cutOff := pair.driver, pair.h, pair.cutOff

	hctx, kill := context.WithCancel(ctx)
	var imports atomic.Int64
	diedAt := make(chan string, 1)
	record := h.record("helper")
	helperRecord := func(ctx context.Context, p domain.BulkCopyProgressed) error {
		if strings.HasPrefix(p.Range, domain.ImportStep+"/") && imports.Add(1) == 2 {
			// Its second import ran on the target; the helper dies
			// before recording it, its claims not given back.
			h.mu.Lock()
			h.dead["helper"] = true
			h.mu.Unlock()
			cutOff()
			kill()
			diedAt <- p.Range
			return errors.New("killed before the import was recorded")
		}
		return record(ctx, p)
	}
	helped := pair.helpUntil(hctx, helperRecord)
	began := time.Now()
	if err := driver.Copy(ctx, h.snapshot(), h.record("driver")); err != nil {
		t.Fatal(err)
	}
	kill()
	<-helped
	var died string
	select {
	case died = <-diedAt:
	default:
		t.Fatalf("the helper never reached a second import (%d imports): the partitions were not shared", imports.Load())
	}
	m := h.snapshot()
	for _, c := range m.Collections {
		if !c.Done || len(c.DoneRanges) != len(c.Planned) {
			t.Fatalf("%s: done=%v with %d of %d steps recorded", c.Collection, c.Done, len(c.DoneRanges), len(c.Planned))
		}
	}
	t.Logf("copied in %s: %d steps recorded by the driver, %d by the helper, which died after importing %s; the driver took over %d partitions the helper had begun",
		time.Since(began).Round(time.Millisecond), h.by["driver"], h.by["helper"], died, pair.retaken.Load())
	if h.by["helper"] == 0 || h.by["driver"] == 0 {
		t.Fatalf("the partitions were not shared: %v", h.by)
	}
	if pair.retaken.Load() == 0 {
		t.Fatal("the driver took over no partition the helper had begun")
	}
	for _, coll := range []string{"segsh_c0", "segsh_c1"} {
		if n, err := dst.CountWhere(ctx, "segsh_db0", coll, ""); err != nil || n != 6000 {
			t.Fatalf("%s on the target: %d rows (%v), want 6000: a partition was imported twice, or missed", coll, n, err)
		}
	}
	rep, err := verify.Verify(ctx, src, dst, verify.Options{SampleEvery: 1})
	if err != nil || !rep.Equal {
		t.Fatalf("after the copy: %s %v", rep.Summary(), err)
	}
	if _, err := os.Stat(filepath.Join(bed.DataDir("target"), "zdm-import", m.ID)); !os.IsNotExist(err) {
		t.Fatalf("the staged segments were left on the target's storage: %v", err)
	}
}
