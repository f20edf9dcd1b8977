package integration_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/dataplane/verify"
	"github.com/zdm-io/zdm/domain"
)

// These tests kill a server of the test bed with SIGKILL, as a crash
// would, and start it again on its data: what zdm promises is that the
// step in flight ends with a reason naming the server, and that nothing is
// lost once it is back.

func TestATargetKilledMidCopyIsResumedWhenItReturns(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src := milvustest.Dial(t, bed.Source)
	const rows = 20000
	milvustest.Seed(t, src, datatools.Shape{Databases: 1, Collections: 1, Rows: rows, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "tk_"})
	c := rowcopy.NewCopier(endpoints{"src": bed.Source, "dst": bed.Target}, rowcopy.Config{Workers: 1, PageRows: 500, RangeRows: 2000}, nil)
	m := planned(t, c)
	var mu sync.Mutex
	seq := m.Seq()
	var restart func()
	record := func(killAt int) (copied func() int64, progress func(context.Context, domain.BulkCopyProgressed) error) {
		var n int64
		checkpoints := 0
		return func() int64 { mu.Lock(); defer mu.Unlock(); return n },
			func(_ context.Context, p domain.BulkCopyProgressed) error {
				mu.Lock()
				defer mu.Unlock()
				seq++
				if err := m.Apply(domain.Record{Seq: seq, Event: p}); err != nil {
					return err
				}
				n += p.Rows
				if checkpoints++; checkpoints == killAt {
					restart = bed.Kill(t, "target")
				}
				return nil
			}
	}
	_, progress := record(2)
	err := c.Copy(ctx, m, progress)
	var se *domain.StepError
	if !errors.As(err, &se) || se.Reason != "target_unreachable" || !strings.Contains(err.Error(), bed.Target) {
		t.Fatalf("a copy whose target died answered %v", err)
	}
	t.Logf("the copy stopped: %v", err)
	restart()
	// The saga runs the step again; it goes on from the last checkpoint.
	copied, progress := record(0)
	if err := c.Copy(ctx, m, progress); err != nil {
		t.Fatal(err)
	}
	if copied() >= rows {
		t.Fatalf("the second run copied %d rows: it started over", copied())
	}
	dst := milvustest.Dial(t, bed.Target)
	rep, err := verify.Verify(ctx, src, dst, verify.Options{SampleEvery: 1})
	if err != nil || !rep.Equal {
		t.Fatalf("after the resumed copy: %+v %v", rep, err)
	}
	t.Logf("resumed after the target's crash: %d of %d rows copied again", copied(), rows)
}

// syncingWithWriters is a sync bed for collection PREFIXdb0/PREFIXc0,
// its applier running and n clients writing batches of 5 rows through
// the proxy, returned once they had 100 rows acknowledged.
func syncingWithWriters(t *testing.T, prefix string, n int) (b *syncBed, answers func() []answer, stop func() []answer) {
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: prefix}
	b = newSyncBed(t, "m-"+strings.TrimSuffix(prefix, "_"), shape, nil)
	through := milvustest.Dial(t, b.proxy(t))
	b.apply(t)
	answers, stop = writers(through, shape, prefix+"db0", prefix+"c0", n, 5, 20*time.Millisecond)
	waitFor(t, "writes before the crash", func() bool { return len(acknowledged(answers())) >= 100 })
	return b, answers, stop
}

func TestATargetKilledMidSyncIsCaughtUpWhenItReturns(t *testing.T) {
	b, answers, stop := syncingWithWriters(t, "tks_", 2)
	restart := b.bed.Kill(t, "target")
	killed := len(answers())
	// The source and the journal take writes while the target is away.
	waitFor(t, "writes while the target is down", func() bool { return len(answers()) >= killed+20 })
	restart()
	all := stop()
	for _, a := range all[killed:] {
		if a.err != nil {
			t.Fatalf("a write failed while only the target was down: %v", a.err)
		}
	}
	b.drain(t)
	acked := acknowledged(all)
	if got := holdsEvery(t, b.dst, "tks_db0", "tks_c0", acked); got != int64(len(acked)) {
		t.Fatalf("the target holds %d of the %d acknowledged rows after it came back", got, len(acked))
	}
	t.Logf("%d rows acknowledged, %d of them while the target was down; all on the target once it returned", len(acked), len(acknowledged(all[killed:])))
}

func TestASourceKilledMidSyncLosesNoAcknowledgedWrite(t *testing.T) {
	b, answers, stop := syncingWithWriters(t, "sks_", 4)
	restart := b.bed.Kill(t, "source")
	killed := time.Now()
	waitFor(t, "writes refused while the source is down", func() bool { return len(since(answers(), killed, refused)) > 0 })
	restart()
	back := time.Now()
	waitFor(t, "writes acknowledged once the source is back", func() bool { return len(since(answers(), back, ok)) >= 20 })
	all := stop()
	// Writes broken off by the crash are repaired from the source once it
	// answers strongly consistent reads again (a killed Milvus 2.3 takes
	// most of a minute after its restart): the target ends as the source
	// is, and holds every acknowledged row.
	b.drainWithin(t, 3*time.Minute)
	acked := acknowledged(all)
	var tried []int64
	for _, a := range all {
		tried = append(tried, a.keys...)
	}
	if got := holdsEvery(t, b.dst, "sks_db0", "sks_c0", acked); got != int64(len(acked)) {
		t.Fatalf("the target holds %d of the %d acknowledged rows", got, len(acked))
	}
	onSource, onTarget := holdsEvery(t, b.src, "sks_db0", "sks_c0", tried), holdsEvery(t, b.dst, "sks_db0", "sks_c0", tried)
	if onSource != onTarget {
		t.Fatalf("after the source's crash it holds %d of the written rows and the target %d", onSource, onTarget)
	}
	t.Logf("%d rows acknowledged, %d refused or broken off by the crash; source and target hold %d", len(acked), len(tried)-len(acked), onSource)
}
