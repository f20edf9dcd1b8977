package integration_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
)

// A journaled write the target keeps refusing (here into a partition
// dropped from the target behind zdm's back) is retried for StuckAfter,
// then fails the migration apply_failed, naming the write and the
// target's error.
func TestAWriteTheTargetKeepsRefusingFailsTheMigration(t *testing.T) {
	ctx := context.Background()
	const stuckAfter = 3 * time.Second
	b := newSwitchBed(t, "stuck_", livesync.Config{StuckAfter: stuckAfter})
	const part = "late"
	b.partitionMade(t, part)
	b.partitionGone(t, part)

	gen := milvus.RowGen{Schema: b.shape.Schema(b.coll), Rand: milvustest.NewRand()}
	began := time.Now()
	keys := milvus.Keys{Ints: []int64{5000, 5001}}
	if _, err := b.via.Insert(ctx, b.db, b.coll, part, gen.Columns(2, keys, func(int) int64 { return 1 }), 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the migration failed", func() bool { return b.failed.list() != "" })
	took := time.Since(began)
	if got := b.failed.list(); got != b.m.ID+" apply_failed" {
		t.Fatalf("failures: %q, want %s apply_failed", got, b.m.ID)
	}
	detail := b.failed.detail()
	if !strings.Contains(detail, "cannot be applied to the target") || !strings.Contains(strings.ToLower(detail), "partition") {
		t.Fatalf("the failure's detail does not name the write and the target's error: %q", detail)
	}
	if took < stuckAfter {
		t.Fatalf("the migration failed %s after the write, before the write had failed for %s", took, stuckAfter)
	}
	t.Logf("failed apply_failed %s after the write: %s", took.Round(time.Millisecond), detail)
}
