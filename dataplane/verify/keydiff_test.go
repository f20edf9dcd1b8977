package verify

import (
	"errors"
	"slices"
	"strconv"
	"testing"
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
	d, err := walkKeys(src, dst, text, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := keyDiff{srcKeys: 8, dstKeys: 9, missing: 1, extra: 2,
		named: []string{"2 missing on the target", "6 only on the target", "11 only on the target"}}
	if d.srcKeys != want.srcKeys || d.dstKeys != want.dstKeys || d.missing != want.missing || d.extra != want.extra || !slices.Equal(d.named, want.named) {
		t.Fatalf("got %+v, want %+v", d, want)
	}

	d, err = walkKeys(windows([]int64{1, 2, 3, 4}), windows(), text, 2)
	if err != nil {
		t.Fatal(err)
	}
	if d.missing != 4 || d.dstKeys != 0 || len(d.named) != 2 {
		t.Fatalf("an empty target: got %+v, want 4 missing, 2 of them named", d)
	}

	d, err = walkKeys(windows([]int64{1, 2}), windows([]int64{1, 2}), text, 2)
	if err != nil || d.missing+d.extra != 0 || d.srcKeys != 2 || d.dstKeys != 2 || d.named != nil {
		t.Fatalf("equal sides: got %+v, %v", d, err)
	}

	broken := errors.New("query failed")
	_, err = walkKeys(windows([]int64{1}), func() ([]int64, error) { return nil, broken }, text, 2)
	if !errors.Is(err, broken) {
		t.Fatalf("a side that cannot be read: got %v, want its error", err)
	}
}
