package integration_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/dataplane/verify"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
)

// history is a migration's aggregate shared by the copiers of a test, as
// the event log is among zdmd: a range is recorded once, whoever copied it.
type history struct {
	mu    sync.Mutex
	m     *domain.Migration
	by    map[string]int // ranges recorded by each copier
	twice int            // ranges a copier recorded after another had
	dead  map[string]bool
}

func (h *history) record(who string) func(context.Context, domain.BulkCopyProgressed) error {
	return func(_ context.Context, p domain.BulkCopyProgressed) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.dead[who] {
			return context.Canceled
		}
		events, err := domain.Decide(h.m, domain.RecordCopyProgress{Progress: p})
		if err != nil {
			return err
		}
		if len(events) == 0 {
			h.twice++
		}
		for _, e := range events {
			if err := h.m.Apply(domain.Record{Seq: h.m.Seq() + 1, At: time.Now(), Event: e}); err != nil {
				return err
			}
			h.by[who]++
		}
		return nil
	}
}

// recorded reports whether the history records a piece of a collection's
// copy: a range, or a partition of a segment copy ("partition/ID"), whose
// import is then recorded.
func (h *history) recorded(db, coll, piece string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.m.Collections {
		if c.Database != db || c.Collection != coll {
			continue
		}
		if _, done := c.DoneRanges[piece]; done {
			return true
		}
		if id, ok := strings.CutPrefix(piece, "partition/"); ok {
			for r := range c.DoneRanges {
				if strings.HasPrefix(r, domain.ImportStep+"/") && strings.Split(r, "/")[2] == id {
					return true
				}
			}
		}
	}
	return false
}

func (h *history) snapshot() *domain.Migration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m.Clone()
}

type sharing struct {
	*eventstore.Claims
	h       *history
	retaken *atomic.Int64 // claims taken on ranges someone began and did not record
	active  *sync.Map     // the works whose claims are held
}

func (s sharing) Claim(ctx context.Context, work string) (context.Context, func(), bool, bool, error) {
	held, release, first, ok, err := s.Claims.Claim(ctx, work)
	if ok {
		s.active.Store(work, true)
		give := release
		release = func() { s.active.Delete(work); give() }
	}
	if ok && !first {
		// work is migration/database/collection/range.
		parts := strings.SplitN(work, "/", 4)
		if !s.h.recorded(parts[1], parts[2], parts[3]) {
			s.retaken.Add(1)
		}
	}
	return held, release, first, ok, err
}

func (s sharing) Migration(context.Context, string) (*domain.Migration, error) {
	return s.h.snapshot(), nil
}

// sharedCopy is two zdmd's copiers sharing one migration: their claims
// on one NATS, their checkpoints in one history.
type sharedCopy struct {
	driver, helper *rowcopy.Copier
	h              *history
	retaken        atomic.Int64 // claims the driver took on work someone began and did not record
	helperActive   sync.Map     // the works whose claims the helper holds
	cutOff         func()       // cuts the helper's NATS connection: its claims are not given back
}

// helpUntil has the helper pass over the copy, as a zdmd that does not
// drive does, until ctx ends; the channel closes once it stopped.
func (s *sharedCopy) helpUntil(ctx context.Context, record func(context.Context, domain.BulkCopyProgressed) error) <-chan struct{} {
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for ctx.Err() == nil {
			_ = s.helper.Help(ctx, s.h.snapshot(), record)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return stopped
}

func shareCopy(t *testing.T, r milvus.Resolver, cfg rowcopy.Config) *sharedCopy {
	t.Helper()
	s := &sharedCopy{driver: rowcopy.NewCopier(r, cfg, nil), helper: rowcopy.NewCopier(r, cfg, nil)}
	s.h = &history{m: planned(t, s.driver), by: map[string]int{}, dead: map[string]bool{}}
	srv := estest.Start(t)
	const ttl = time.Second
	driverClaims, _ := srv.Claims(t, "zdmd-1", ttl)
	helperClaims, cutOff := srv.Claims(t, "zdmd-2", ttl)
	var helperRetaken atomic.Int64
	var driverActive sync.Map
	s.driver.Share(sharing{driverClaims, s.h, &s.retaken, &driverActive})
	s.helper.Share(sharing{helperClaims, s.h, &helperRetaken, &s.helperActive})
	s.cutOff = cutOff
	return s
}

// Two zdmd share a copy's ranges; the helper dies in the middle of it,
// holding ranges it had begun. The driver takes them over once their
// claims expire and the target ends equal to the source, no row twice.
func TestTwoZdmdShareACopyAndOneDiesHoldingRanges(t *testing.T) {
	bed := milvustest.Empty(t)
	ctx := context.Background()
	src := milvustest.Dial(t, bed.Source)
	milvustest.Seed(t, src, datatools.Shape{Databases: 1, Collections: 2, Rows: 20000, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "share_"})
	cfg := rowcopy.Config{Workers: 2, Readers: 2, PageRows: 500, RangeRows: 1000}
	pair := shareCopy(t, endpoints{"src": bed.Source, "dst": bed.Target}, cfg)
	driver, h, retaken, helperActive, cutOff := pair.driver, pair.h, &pair.retaken, &pair.helperActive, pair.cutOff

	// The helper passes over the copy until it has recorded killAfter
	// ranges and holds one it has not recorded, then dies at once: its
	// NATS connection cut (its claims are not given back), its copy
	// stopped wherever it is, nothing more of it recorded. killAfter is
	// small: on a loaded machine the helper, which starts after the
	// driver, recorded its eighth range of 42 only as the last were being
	// copied, and held none then.
	const killAfter = 3
	hctx, kill := context.WithCancel(ctx)
	helped := pair.helpUntil(hctx, h.record("helper"))
	go func() {
		for hctx.Err() == nil {
			h.mu.Lock()
			holding := false
			helperActive.Range(func(_, _ any) bool { holding = true; return false })
			if h.by["helper"] >= killAfter && holding {
				h.dead["helper"] = true
				cutOff()
				kill()
			}
			h.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	began := time.Now()
	if err := driver.Copy(ctx, h.snapshot(), h.record("driver")); err != nil {
		t.Fatal(err)
	}
	kill()
	<-helped
	t.Logf("copied in %s: %d ranges by the driver, %d by the helper, %d recorded a second time; the driver took over %d ranges the helper had begun",
		time.Since(began).Round(time.Millisecond), h.by["driver"], h.by["helper"], h.twice, retaken.Load())
	if h.by["helper"] < killAfter || h.by["driver"] == 0 {
		t.Fatalf("the ranges were not shared: %v", h.by)
	}
	if retaken.Load() == 0 {
		t.Fatal("the helper died holding no range: the take-over was not tried")
	}
	m := h.snapshot()
	for _, c := range m.Collections {
		if !c.Done || len(c.DoneRanges) != len(c.Planned) {
			t.Fatalf("%s: done=%v with %d of %d ranges recorded", c.Collection, c.Done, len(c.DoneRanges), len(c.Planned))
		}
	}
	dst := milvustest.Dial(t, bed.Target)
	for _, coll := range []string{"share_c0", "share_c1"} {
		if n, err := dst.CountWhere(ctx, "share_db0", coll, ""); err != nil || n != 20000 {
			t.Fatalf("%s on the target: %d rows (%v), want 20000, none twice", coll, n, err)
		}
	}
	rep, err := verify.Verify(ctx, src, dst, verify.Options{SampleEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Collections {
		if !c.Equal {
			t.Fatalf("%s differs on the target: %+v", c.Collection, c)
		}
	}
}
