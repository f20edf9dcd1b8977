package integration_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/domain"
)

// A switch whose target cannot take the journal while writes are held
// holds them no longer than its limit, not for the drain's minutes: the
// attempt ends, the held writes go on to the source, and the next
// attempt, once the target takes writes again, ends equal.
func TestASwitchHoldsWritesNoLongerThanItsLimit(t *testing.T) {
	ctx := context.Background()
	const limit = 2 * time.Second
	// The drain's own timeout is five times the limit: without the limit
	// the writes would be held for it.
	notes := &noteBook{}
	b := newSwitchBed(t, "hold_", livesync.Config{HoldLimit: limit, DrainTimeout: 5 * limit, Notes: notes})
	dst, via, syncer, m, db, coll, part := b.dst, b.via, b.syncer, b.m, b.db, b.coll, "late"

	// A partition made through the proxy reaches the target; dropped there
	// behind zdm's back, the writes into it cannot be applied.
	b.partitionMade(t, part)
	b.partitionGone(t, part)

	// A client writes into it through the proxy for the whole test, and
	// notes how long each write took and when it was answered.
	type write struct {
		took time.Duration
		at   time.Time
	}
	var mu sync.Mutex
	var writes []write
	wctx, stopWriting := context.WithCancel(ctx)
	var writing sync.WaitGroup
	writing.Go(func() {
		gen := milvus.RowGen{Schema: b.shape.Schema(coll), Rand: milvustest.NewRand()}
		for key := int64(1_000_000); wctx.Err() == nil; key += 10 {
			keys := milvus.Keys{}
			for i := range int64(10) {
				keys.Ints = append(keys.Ints, key+i)
			}
			began := time.Now()
			if _, err := via.Insert(wctx, db, coll, part, gen.Columns(10, keys, func(int) int64 { return 1 }), 10); err != nil {
				if wctx.Err() == nil {
					t.Errorf("a write through the proxy failed: %v", err)
				}
				return
			}
			mu.Lock()
			writes = append(writes, write{time.Since(began), time.Now()})
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	})
	// Before the proxy's connection closes, should the test end early.
	t.Cleanup(func() { stopWriting(); writing.Wait() })
	longest := func(from, to time.Time) (d time.Duration, answered int) {
		mu.Lock()
		defer mu.Unlock()
		for _, w := range writes {
			if w.at.After(from) && w.at.Before(to) {
				d, answered = max(d, w.took), answered+1
			}
		}
		return d, answered
	}
	time.Sleep(time.Second)

	began := time.Now()
	_, _, _, err := syncer.Switch(ctx, m)
	ended := time.Now()
	var step *domain.StepError
	if !errors.As(err, &step) || step.Reason != "switch_hold_exceeded" {
		t.Fatalf("a switch whose target cannot apply: %v, want switch_hold_exceeded", err)
	}
	// A write held to the end is answered once the source took it, which
	// on a busy machine can take a while; without the limit it would have
	// been held the drain's 10 s.
	time.Sleep(3 * time.Second)
	held, _ := longest(began, ended.Add(3*time.Second))
	if held < limit-500*time.Millisecond || held > limit+3*time.Second {
		t.Fatalf("the longest write during the switch took %s, want about the hold limit %s", held, limit)
	}
	if !strings.Contains(notes.all(), "the hold limit (milvus.switch_hold_limit)") {
		t.Fatalf("the migration's notes do not say why the switch is tried again: %q", notes.all())
	}
	if _, after := longest(ended.Add(100*time.Millisecond), ended.Add(3*time.Second)); after == 0 {
		t.Fatal("no write was answered in the 3 s after the switch ended")
	}
	t.Logf("the switch ended after %s (%v); its longest write took %s", ended.Sub(began).Round(time.Millisecond), err, held.Round(time.Millisecond))

	// The partition made again on the target, the writes into it apply,
	// and the next switch ends equal.
	if err := dst.CreatePartition(ctx, db, coll, part); err != nil {
		t.Fatal(err)
	}
	loaded, err := dst.Svc.LoadPartitions(dst.In(ctx, db), &milvuspb.LoadPartitionsRequest{DbName: db, CollectionName: coll, PartitionNames: []string{part}})
	if err := milvus.Check("load partition", loaded, err); err != nil {
		t.Fatal(err)
	}
	stopWriting()
	writing.Wait()
	var sw domain.SwitchedOver
	var check domain.Verified
	for attempt := 1; ; attempt++ {
		var route func(bool)
		sw, check, route, err = syncer.Switch(ctx, m)
		if err == nil {
			route(false)
			break
		}
		// The applier takes up to its backoff's 5 s to try the stuck
		// writes again.
		if !errors.As(err, &step) || step.Reason != "switch_hold_exceeded" || attempt == 5 {
			t.Fatalf("switch attempt %d after the target came back: %v", attempt, err)
		}
	}
	if !check.Equal {
		t.Fatalf("the switch after the target came back: %s", check.Report)
	}
	_, n := longest(time.Time{}, time.Now())
	t.Logf("then the switch held writes %.0f ms and found the clusters equal; %d writes of 10 rows answered in all", sw.WritePauseMS, n)
	if err := syncer.Disarm(ctx, m); err != nil {
		t.Fatal(err)
	}
}
