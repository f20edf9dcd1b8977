package livesync

import (
	"slices"
	"testing"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

func TestKeysRepairedTogetherAreReadOnceEachInBoundedChunks(t *testing.T) {
	var s keySet
	s.add(milvus.Keys{Ints: []int64{5, 1, 3}})
	s.add(milvus.Keys{Ints: []int64{3, 2, 4, 5}})
	s.add(milvus.Keys{Strs: []string{"b", "a", "b"}})
	got := s.chunks(2)
	want := []milvus.Keys{{Ints: []int64{1, 2}}, {Ints: []int64{3, 4}}, {Ints: []int64{5}}, {Strs: []string{"a", "b"}}}
	if !slices.EqualFunc(got, want, func(a, b milvus.Keys) bool {
		return slices.Equal(a.Ints, b.Ints) && slices.Equal(a.Strs, b.Strs)
	}) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if (&keySet{}).chunks(2) != nil {
		t.Fatal("an empty set gave chunks")
	}
}
