package verify

import (
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// windows serves keys as a side's pages would: each call the next one.
func windows(pages ...[]int64) func() ([]int64, error) {
	return func() ([]int64, error) {
		if len(pages) == 0 {
			return nil, nil
		}
		p := pages[0]
		pages = pages[1:]
		return p, nil
	}
}

func TestTheKeyWalkNamesTheKeysOneSideLacks(t *testing.T) {
	text := func(i int64) string { return strconv.FormatInt(i, 10) }
	// Windows of different sizes on each side: the walk must not compare
	// window by window.
	src := windows([]int64{1, 2, 3}, []int64{4, 5, 7}, []int64{9, 10})
	dst := windows([]int64{1, 3, 4, 5, 6}, []int64{7, 9, 10, 11})
	d, err := walkKeys(src, dst, text, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := keyDiff{srcKeys: 8, dstKeys: 9, missing: 1, extra: 2,
		named: []string{"2 missing on the target", "6 only on the target", "11 only on the target"}}
	if d.srcKeys != want.srcKeys || d.dstKeys != want.dstKeys || d.missing != want.missing || d.extra != want.extra || !slices.Equal(d.named, want.named) {
		t.Fatalf("got %+v, want %+v", d, want)
	}

	d, err = walkKeys(windows([]int64{1, 2, 3, 4}), windows(), text, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.missing != 4 || d.dstKeys != 0 || len(d.named) != 2 {
		t.Fatalf("an empty target: got %+v, want 4 missing, 2 of them named", d)
	}

	d, err = walkKeys(windows([]int64{1, 2}), windows([]int64{1, 2}), text, 2, nil)
	if err != nil || d.missing+d.extra != 0 || d.srcKeys != 2 || d.dstKeys != 2 || d.named != nil {
		t.Fatalf("equal sides: got %+v, %v", d, err)
	}

	broken := errors.New("query failed")
	_, err = walkKeys(windows([]int64{1}), func() ([]int64, error) { return nil, broken }, text, 2, nil)
	if !errors.Is(err, broken) {
		t.Fatalf("a side that cannot be read: got %v, want its error", err)
	}
}

// A key held twice counts twice against a query's limit and comes back
// once, so one side's sample of its smallest keys can end short of the
// other's: only the keys up to the smaller last key are compared.
func TestTheSamplesAreComparedUpToTheSmallerLastKey(t *testing.T) {
	hashes := func(keys ...string) map[string]uint64 {
		h := map[string]uint64{}
		for _, k := range keys {
			h[k] = 1
		}
		return h
	}
	sh, th := hashes("1", "2", "3"), hashes("1", "2", "3", "4")
	commonSpan(sh, th, milvus.Keys{Ints: []int64{1, 2, 3}}, milvus.Keys{Ints: []int64{1, 2, 3, 4}})
	if !sameHashes(sh, th) || len(th) != 3 {
		t.Fatalf("ints: %v against %v", sh, th)
	}
	sh, th = hashes("a", "c", "d"), hashes("a", "b")
	commonSpan(sh, th, milvus.Keys{Strs: []string{"a", "c", "d"}}, milvus.Keys{Strs: []string{"a", "b"}})
	if len(sh) != 1 || len(th) != 2 {
		t.Fatalf("strings: a key within both spans must stay: %v against %v", sh, th)
	}
	sh, th = hashes(), hashes("1")
	commonSpan(sh, th, milvus.Keys{}, milvus.Keys{Ints: []int64{1}})
	if len(th) != 1 {
		t.Fatal("an empty side trims the other")
	}
}

// The ledger the walk before the hold keeps is bounded: past its bounds it
// is not used.
func TestTheLedgerIsNotKeptPastItsBounds(t *testing.T) {
	l := newKeyLedger()
	for i := range ledgerKeys {
		l.differs(strconv.Itoa(i))
	}
	if !l.kept() {
		t.Fatalf("full at %d keys", ledgerKeys)
	}
	l.heldTwice("x")
	if l.kept() {
		t.Fatalf("not full past %d keys", ledgerKeys)
	}
	l = newKeyLedger()
	for range ledgerCounts {
		if !l.spend() {
			t.Fatalf("a count refused within %d", ledgerCounts)
		}
	}
	if l.spend() || l.kept() {
		t.Fatalf("a count allowed past %d", ledgerCounts)
	}
	var none *keyLedger
	none.differs("1") // a walk that keeps no ledger
}
