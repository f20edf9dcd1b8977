package verify

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// splitServer is a Milvus whose one collection has its rows (key: value
// of n) in partitions; a query over the whole collection returns one row
// of a key held in several, the one of the partition last (or first)
// listed.
type splitServer struct {
	clockServer
	parts map[string]map[int64]int64
	last  bool
}

func (s *splitServer) ShowPartitions(context.Context, *milvuspb.ShowPartitionsRequest, ...grpc.CallOption) (*milvuspb.ShowPartitionsResponse, error) {
	var names []string
	for p := range s.parts {
		names = append(names, p)
	}
	return &milvuspb.ShowPartitionsResponse{Status: okStatus, PartitionNames: names}, nil
}

var inKeys = regexp.MustCompile(`^id in \[([0-9,]*)\]$`)

func (s *splitServer) Query(_ context.Context, r *milvuspb.QueryRequest, _ ...grpc.CallOption) (*milvuspb.QueryResults, error) {
	want := func(int64) bool { return true }
	if m := inKeys.FindStringSubmatch(r.GetExpr()); m != nil {
		want = func(k int64) bool { return slices.Contains(strings.Split(m[1], ","), strconv.FormatInt(k, 10)) }
	}
	parts := r.GetPartitionNames()
	if len(parts) == 0 {
		for p := range s.parts {
			parts = append(parts, p)
		}
	}
	slices.Sort(parts)
	if s.last {
		slices.Reverse(parts)
	}
	var rows int64
	got := map[int64]int64{}
	for _, p := range parts {
		for k, n := range s.parts[p] {
			if want(k) {
				rows++
				if _, ok := got[k]; !ok {
					got[k] = n
				}
			}
		}
	}
	long := func(name string, v ...int64) *schemapb.FieldData {
		return &schemapb.FieldData{FieldName: name, Type: schemapb.DataType_Int64, Field: &schemapb.FieldData_Scalars{
			Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: v}}}}}
	}
	if slices.Equal(r.GetOutputFields(), []string{"count(*)"}) {
		return &milvuspb.QueryResults{Status: okStatus, FieldsData: []*schemapb.FieldData{long("count(*)", rows)}}, nil
	}
	var ids, ns []int64
	for _, k := range slices.Sorted(func(yield func(int64) bool) {
		for k := range got {
			if !yield(k) {
				return
			}
		}
	}) {
		ids, ns = append(ids, k), append(ns, got[k])
	}
	return &milvuspb.QueryResults{Status: okStatus, FieldsData: []*schemapb.FieldData{long("id", ids...), long("n", ns...)}}, nil
}

// A key held in several partitions, with a row in each, is equal when its
// rows are equal partition by partition, whichever one a query over the
// collection returns on each side; it differs when a partition's row
// does, or when one side lacks it in a partition.
func TestAKeyHeldInSeveralPartitionsIsComparedPartitionByPartition(t *testing.T) {
	both := func() map[string]map[int64]int64 {
		return map[string]map[int64]int64{"_default": {1: 10, 2: 20, 3: 30}, "late": {1: 11}}
	}
	for _, tc := range []struct {
		name   string
		target map[string]map[int64]int64
		equal  bool
		split  int
	}{
		{"the same rows", both(), true, 1},
		{"a row that differs in one partition", map[string]map[int64]int64{"_default": {1: 10, 2: 20, 3: 30}, "late": {1: 12}}, false, 0},
		{"the key in one partition only", map[string]map[int64]int64{"_default": {2: 20, 3: 30}, "late": {1: 11}}, false, 0},
	} {
		src := &splitServer{parts: both()}
		dst := &splitServer{parts: tc.target, last: true}
		quick, err := QuickCheck(context.Background(), &milvus.Conn{Svc: src}, &milvus.Conn{Svc: dst})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if quick.Equal != tc.equal || quick.Collections[0].SplitKeys != tc.split {
			t.Fatalf("%s: the check found equal %v, %d keys compared partition by partition; want %v, %d: %s",
				tc.name, quick.Equal, quick.Collections[0].SplitKeys, tc.equal, tc.split, quick.Summary())
		}
		if tc.equal && !strings.Contains(quick.Summary(), "1 keys held in several partitions") {
			t.Fatalf("%s: the summary does not say keys were compared partition by partition: %s", tc.name, quick.Summary())
		}
		if !tc.equal && !strings.Contains(quick.Summary(), "1 differs") && !strings.Contains(quick.Summary(), "rows 4 on the source, 3 on the target") {
			t.Fatalf("%s: the summary does not name the key: %s", tc.name, quick.Summary())
		}
	}
}
