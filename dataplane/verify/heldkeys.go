package verify

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"golang.org/x/sync/errgroup"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// A source holding keys twice (duplicates.go) has row counts that differ
// from the target's, and the check made while writes are held used to
// explain them by walking every key of the collection: with a million
// rows that held the application's writes for 25 s, and the pause grew
// with the collection. Now the check before the hold, which walks the
// keys while writes still flow, keeps a ledger of what it found: the keys
// that differed and the keys the source holds more than once. While writes
// are held only those keys and the keys written since the walk began are
// read, one by one: every other key was read by the walk in the state it
// has now, as nothing wrote it through the proxy since. Their rows must
// then account for the whole difference of the counts. When they do not
// (a ledger too long to keep, a key the walk could not place, a write
// around the proxy), the keys are walked while held, as before.

// Bounds of a ledger and of what the held check reads from it.
const (
	ledgerKeys   = 100_000 // differing keys and keys held twice: as many as are read while held
	ledgerCounts = 400     // counts spent locating keys held twice
	heldKeysMax  = 100_000 // keys read one by one while writes are held
	// writtenRowsMax bounds the rows written since the check before the
	// hold that the check while held reads whole: the last ones written.
	writtenRowsMax = 1_000
	heldChunk      = 2_000 // keys per read
)

// keyLedger is what a walk before the hold keeps for the check made while
// writes are held. Its source side locates (a goroutine of its own) while
// the walk notes what differs.
type keyLedger struct {
	mu     sync.Mutex
	differ map[string]bool
	twice  map[string]bool
	counts int
	// full: the ledger could not keep everything; it is not used.
	full bool
}

func newKeyLedger() *keyLedger {
	return &keyLedger{differ: map[string]bool{}, twice: map[string]bool{}}
}

func (l *keyLedger) differs(key string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.differ[key] = true
	l.full = l.full || len(l.differ)+len(l.twice) > ledgerKeys
}

func (l *keyLedger) heldTwice(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.twice[key] = true
	l.full = l.full || len(l.differ)+len(l.twice) > ledgerKeys
}

// kept reports whether the ledger kept everything within its bounds.
func (l *keyLedger) kept() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.full
}

// spend reports whether one more count may be spent locating.
func (l *keyLedger) spend() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts++
	l.full = l.full || l.counts > ledgerCounts
	return !l.full
}

// locate finds the keys of one window (keys, sorted and distinct, the
// first after `after`) that the side holds more than once. Milvus counts
// every row of a key while its queries return the key once, so the
// window's rows are counted and, where they outnumber its keys, each half
// is counted again. A write landing between a window's read and its count
// can misplace a count; the keys it wrote are read again while writes are
// held, so that only costs the shortcut, never the check.
func locate[K cmp.Ordered](ctx context.Context, s sideOf, pk *schemapb.FieldSchema, after *string, keys []K, text func(K) string, l *keyLedger) error {
	count := func(after *string, keys []K) (int64, error) {
		if !l.spend() {
			return 0, nil
		}
		last := text(keys[len(keys)-1])
		expr := milvus.KeyRange{Gt: after, Le: &last}.Expr(pk, nil)
		n, err := s.c.CountAt(ctx, s.db, s.cl, expr, s.ts)
		if err != nil {
			return 0, fmt.Errorf("count the rows of %s/%s up to key %s: %w", s.db, s.cl, last, err)
		}
		return n - int64(len(keys)), nil
	}
	var split func(after *string, keys []K, extra int64) error
	split = func(after *string, keys []K, extra int64) error {
		switch {
		case extra <= 0 || !l.kept():
			return nil
		case len(keys) == 1:
			l.heldTwice(text(keys[0]))
			return nil
		}
		mid := len(keys) / 2
		left, err := count(after, keys[:mid])
		if err != nil {
			return err
		}
		if err := split(after, keys[:mid], left); err != nil {
			return err
		}
		boundary := text(keys[mid-1])
		return split(&boundary, keys[mid:], extra-max(0, left))
	}
	extra, err := count(after, keys)
	if err != nil {
		return err
	}
	return split(after, keys, extra)
}

// settleHeld explains, while writes are held, counts that differ by
// reading only the keys of pre's ledger and those written since its walk
// began. It reports whether it settled the comparison; when it did not,
// the caller walks the keys.
func settleHeld(ctx context.Context, cr *CollectionReport, pk *schemapb.FieldSchema, src, dst sideOf, pre *CollectionReport, written []string) (bool, error) {
	if pre == nil || pre.ledger == nil {
		return false, nil
	}
	set := make(map[string]bool, len(written))
	for _, k := range written {
		set[k] = true
	}
	// The rows the target alone held before, in a collection whose rows
	// expire, are read again: each may be there still (expired.go).
	expired := map[string]bool{}
	if cr.Expires && pre.ExpiredOnSource > 0 {
		for _, k := range pre.OnlyOnTarget {
			expired[k], set[k] = !set[k], true
		}
	}
	for k := range pre.ledger.differ {
		if !set[k] {
			return false, nil // a key no write explains: named by the walk
		}
	}
	for k := range pre.ledger.twice {
		set[k] = true
	}
	if len(set) > heldKeysMax {
		return false, nil
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var srcRows, dstRows int64
	var gone []string
	for chunk := range slices.Chunk(keys, heldChunk) {
		var sn, dn int64
		var sk, dk []string
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() (err error) { sn, sk, err = rowsAndKeys(gctx, src, pk, chunk); return err })
		g.Go(func() (err error) { dn, dk, err = rowsAndKeys(gctx, dst, pk, chunk); return err })
		if err := g.Wait(); err != nil {
			return false, err
		}
		// Both key lists are sorted: the target's keys its source removed
		// after their time to live are left out of the comparison.
		var alone []string
		dk = slices.DeleteFunc(dk, func(k string) bool {
			_, on := slices.BinarySearch(sk, k)
			if !on && expired[k] {
				alone = append(alone, k)
				return true
			}
			return false
		})
		if !slices.Equal(sk, dk) || dn != int64(len(dk)+len(alone)) {
			return false, nil // a key differs, or is twice on the target: named by the walk
		}
		gone = append(gone, alone...)
		srcRows, dstRows = srcRows+sn, dstRows+dn
		cr.SourceDuplicates += sn - int64(len(sk))
	}
	if srcRows-dstRows != cr.SourceRows-cr.TargetRows {
		cr.SourceDuplicates = 0
		return false, nil // rows the keys read do not account for
	}
	cr.ExpiredOnSource, cr.OnlyOnTarget = len(gone), gone
	cr.HeldKeysRead = len(keys)
	cr.Equal = true
	return true, nil
}

// rowsAndKeys counts a side's rows under keys and reads which of them it
// holds, sorted, at once: each strong read waits for the server's next
// time tick.
func rowsAndKeys(ctx context.Context, s sideOf, pk *schemapb.FieldSchema, keys []string) (int64, []string, error) {
	expr := keysExpr(pk, keys)
	var n int64
	var held map[string]uint64
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { n, err = s.c.CountAt(gctx, s.db, s.cl, expr, s.ts); return err })
	g.Go(func() (err error) {
		held, err = s.keyHashes(gctx, pk, nil, keys, []string{pk.GetName()}, nil)
		return err
	})
	if err := g.Wait(); err != nil {
		return 0, nil, fmt.Errorf("read keys of %s/%s: %w", s.db, s.cl, err)
	}
	return n, slices.Sorted(maps.Keys(held)), nil
}

// lastWritten is the last n distinct keys of written, sorted, and
// whether they are all its keys.
func lastWritten(written []string, n int) (keys []string, all bool) {
	seen := map[string]bool{}
	i := len(written) - 1
	for ; i >= 0; i-- {
		if k := written[i]; !seen[k] {
			if len(keys) == n {
				break
			}
			seen[k] = true
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, i < 0
}

// writtenNote says how many rows written since the check before the hold
// the check while writes were held compared whole ("" if none).
func (r *Report) writtenNote() string {
	if n := r.total(func(c CollectionReport) int { return c.WrittenRowsRead }); n > 0 {
		return fmt.Sprintf("%d rows written since the check before the hold compared whole", n)
	}
	return ""
}
