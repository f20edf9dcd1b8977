package verify

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// Where the row counts differ and the compared rows do not say why, both
// sides' keys are walked in key order, side by side, a query window at a
// time: the walk counts each side's distinct keys and names the keys one
// side holds and the other does not. An operator whose switch was refused
// then knows which writes to look for, and only two windows are held in
// memory, whatever the collection's size.

// onlyTargetMax bounds the keys on the target only that a walk lists
// (CollectionReport.OnlyOnTarget): as many as the check while writes are
// held reads one by one.
const onlyTargetMax = heldKeysMax

// onlyOnTarget ends the mismatch named for a key the target alone holds.
const onlyOnTarget = " only on the target"

// keyDiff is what a walk of both sides' keys found.
type keyDiff struct {
	srcKeys, dstKeys int64 // distinct keys
	missing, extra   int   // keys on the source only, on the target only
	named            []string
	// onlyTarget lists the keys on the target only, up to onlyTargetMax.
	onlyTarget []string
	// ledger, when asked for, is every key that differed and every key
	// the source holds more than once (nil: too many to keep).
	ledger *keyLedger
}

// diffKeys walks the keys of src and dst, naming at most max of those
// that differ; with keep, it also fills the diff's ledger.
func diffKeys(ctx context.Context, src, dst sideOf, pk *schemapb.FieldSchema, max int, keep bool) (keyDiff, error) {
	ctx, stop := context.WithCancel(ctx) // ends the side still reading when the other failed
	defer stop()
	var l *keyLedger
	if keep {
		l = newKeyLedger()
	}
	var d keyDiff
	var err error
	if pk.GetDataType() == schemapb.DataType_VarChar {
		strs := func(k milvus.Keys) []string { return k.Strs }
		text := func(s string) string { return s }
		d, err = walkKeys(keyPages(ctx, src, pk, strs, text, l), keyPages(ctx, dst, pk, strs, text, nil), text, max, l)
	} else {
		ints := func(k milvus.Keys) []int64 { return k.Ints }
		text := func(i int64) string { return strconv.FormatInt(i, 10) }
		d, err = walkKeys(keyPages(ctx, src, pk, ints, text, l), keyPages(ctx, dst, pk, ints, text, nil), text, max, l)
	}
	if err == nil && l != nil && l.kept() {
		d.ledger = l
	}
	return d, err
}

// keyPages returns a function that reads a side's next window of keys,
// sorted and each once; an empty window is the end. The next window is
// read while the caller walks this one. With a ledger, each window's rows
// are counted too, and the keys held more than once located (locate).
func keyPages[K cmp.Ordered](ctx context.Context, s sideOf, pk *schemapb.FieldSchema, of func(milvus.Keys) []K, text func(K) string,
	l *keyLedger) func() ([]K, error) {
	type page struct {
		keys []K
		err  error
	}
	pages := make(chan page, 1)
	go func() {
		defer close(pages)
		var cursor *string
		for {
			cols, err := s.c.QueryAt(ctx, s.db, s.cl, milvus.KeyRange{}.Expr(pk, cursor), []string{pk.GetName()}, nil, milvus.QueryWindow, s.ts)
			var keys []K
			if err != nil {
				err = fmt.Errorf("read the keys of %s/%s: %w", s.db, s.cl, err)
			} else {
				keys = of(milvus.KeysOf(milvus.Column(cols, pk.GetName())))
			}
			slices.Sort(keys)
			keys = slices.Compact(keys)
			if err == nil && l != nil && len(keys) > 0 {
				err = locate(ctx, s, pk, cursor, keys, text, l)
			}
			select {
			case pages <- page{keys: keys, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil || len(keys) == 0 {
				return
			}
			last := fmt.Sprint(keys[len(keys)-1])
			end, err := s.c.LastPage(ctx, s.db, s.cl, pk, nil, cursor, last, len(keys), milvus.QueryWindow, s.ts)
			if err != nil || end {
				if err != nil {
					select {
					case pages <- page{err: fmt.Errorf("read the keys of %s/%s: %w", s.db, s.cl, err)}:
					case <-ctx.Done():
					}
				}
				return
			}
			cursor = &last
		}
	}()
	return func() ([]K, error) {
		p, ok := <-pages
		if !ok {
			return nil, nil
		}
		return p.keys, p.err
	}
}

// walkKeys merges two sides' windows of sorted keys; a ledger, if given,
// keeps every key that differs.
func walkKeys[K cmp.Ordered](src, dst func() ([]K, error), text func(K) string, max int, l *keyLedger) (keyDiff, error) {
	var d keyDiff
	var a, b []K
	aEnd, bEnd := false, false
	fill := func(w *[]K, end *bool, next func() ([]K, error)) error {
		for len(*w) == 0 && !*end {
			page, err := next()
			if err != nil {
				return err
			}
			*w, *end = page, len(page) == 0
		}
		return nil
	}
	name := func(k K, where string) {
		if len(d.named) < max {
			d.named = append(d.named, text(k)+where)
		}
		l.differs(text(k))
	}
	for {
		if err := fill(&a, &aEnd, src); err != nil {
			return d, err
		}
		if err := fill(&b, &bEnd, dst); err != nil {
			return d, err
		}
		switch {
		case len(a) == 0 && len(b) == 0:
			return d, nil
		case len(b) == 0 || (len(a) > 0 && a[0] < b[0]):
			d.srcKeys++
			d.missing++
			name(a[0], " missing on the target")
			a = a[1:]
		case len(a) == 0 || b[0] < a[0]:
			d.dstKeys++
			d.extra++
			name(b[0], onlyOnTarget)
			if len(d.onlyTarget) < onlyTargetMax {
				d.onlyTarget = append(d.onlyTarget, text(b[0]))
			}
			b = b[1:]
		default:
			d.srcKeys++
			d.dstKeys++
			a, b = a[1:], b[1:]
		}
	}
}
