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
	// extra rows of a key in a partition, as a repeated insert leaves:
	// counted, and not returned.
	extra map[string]map[int64]int64
	last  bool
}

func (s *splitServer) ShowPartitions(context.Context, *milvuspb.ShowPartitionsRequest, ...grpc.CallOption) (*milvuspb.ShowPartitionsResponse, error) {
	var names []string
	for p := range s.parts {
		names = append(names, p)
	}
	return &milvuspb.ShowPartitionsResponse{Status: okStatus, PartitionNames: names}, nil
}

var (
	inKeys  = regexp.MustCompile(`^id in \[([0-9,]*)\]$`)
	compare = regexp.MustCompile(`^id (>|<=) (-?[0-9]+)$`)
)

// selects reads the filters the comparison sends: keys, and key ranges.
func selects(expr string) func(int64) bool {
	var tests []func(int64) bool
	for _, clause := range strings.Split(expr, " && ") {
		if m := inKeys.FindStringSubmatch(clause); m != nil {
			tests = append(tests, func(k int64) bool { return slices.Contains(strings.Split(m[1], ","), strconv.FormatInt(k, 10)) })
		} else if m := compare.FindStringSubmatch(clause); m != nil {
			n, _ := strconv.ParseInt(m[2], 10, 64)
			tests = append(tests, func(k int64) bool { return (m[1] == ">" && k > n) || (m[1] == "<=" && k <= n) })
		}
	}
	return func(k int64) bool {
		for _, t := range tests {
			if !t(k) {
				return false
			}
		}
		return true
	}
}

func (s *splitServer) Query(_ context.Context, r *milvuspb.QueryRequest, _ ...grpc.CallOption) (*milvuspb.QueryResults, error) {
	want := selects(r.GetExpr())
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
				rows += 1 + s.extra[p][k]
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

// Where the counts differ because a client repeated an insert on the
// source, keys held in several partitions are compared partition by
// partition: held alike, their rows are no one's extra rows; held in
// other partitions on the target, they are a difference, which the
// repeated insert must not hide.
func TestRepeatedInsertsAndKeysInSeveralPartitionsAreToldApart(t *testing.T) {
	parts := func(late map[int64]int64) map[string]map[int64]int64 {
		return map[string]map[int64]int64{"_default": {1: 10, 2: 20, 3: 30}, "late": late}
	}
	repeated := map[string]map[int64]int64{"_default": {2: 1}} // key 2 inserted twice on the source
	for _, tc := range []struct {
		name     string
		target   map[string]map[int64]int64
		equal    bool
		srcTwice int64
		named    string
	}{
		{"key 1 in both partitions on both sides", parts(map[int64]int64{1: 11}), true, 1, ""},
		{"key 1's row in late lost on the target", parts(map[int64]int64{}), false, 1, "1 in partitions _default, late on the source, _default on the target"},
	} {
		src := &splitServer{parts: parts(map[int64]int64{1: 11}), extra: repeated}
		dst := &splitServer{parts: tc.target}
		rep, err := QuickCheck(context.Background(), &milvus.Conn{Svc: src}, &milvus.Conn{Svc: dst})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		c := rep.Collections[0]
		if rep.Equal != tc.equal || c.TargetDuplicates != 0 || c.SourceDuplicates != tc.srcTwice ||
			(tc.named != "" && !slices.Contains(c.Mismatches, tc.named)) {
			t.Fatalf("%s: equal %v, source duplicates %d, target duplicates %d, mismatches %q; want equal %v, %d, 0, naming %q",
				tc.name, rep.Equal, c.SourceDuplicates, c.TargetDuplicates, c.Mismatches, tc.equal, tc.srcTwice, tc.named)
		}
		t.Logf("%s: %s", tc.name, rep.Summary())
	}
}

// A key the source holds in several rows of one partition, inserted again
// with other values, is answered with any of them; the target holds the
// last write (or, after a segment copy, as many rows), and the check says
// so instead of calling it a difference. A key the target holds in other
// rows than these, or whose one row differs, still differs.
func TestAKeyInsertedAgainWithOtherValuesIsNoted(t *testing.T) {
	one := func(n int64) map[string]map[int64]int64 { return map[string]map[int64]int64{"_default": {1: n, 2: 20}} }
	twice := map[string]map[int64]int64{"_default": {1: 1}}
	for _, tc := range []struct {
		name           string
		srcExtra       map[string]map[int64]int64
		dstExtra       map[string]map[int64]int64
		equal          bool
		again          int
		summaryContent string
	}{
		{"inserted again on the source", twice, nil, true, 1, "1 keys are held on the source in several rows with other values"},
		{"held twice on the target too, as a segment copy moves them", twice, twice, true, 1, "1 keys are held on the source in several rows"},
		{"held three times on the target", twice, map[string]map[int64]int64{"_default": {1: 2}}, false, 0, "1 differs"},
		{"held once on each side", nil, nil, false, 0, "1 differs"},
	} {
		src := &splitServer{parts: one(10), extra: tc.srcExtra}
		dst := &splitServer{parts: one(11), extra: tc.dstExtra}
		rep, err := QuickCheck(context.Background(), &milvus.Conn{Svc: src}, &milvus.Conn{Svc: dst})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if rep.Equal != tc.equal || rep.Collections[0].AgainKeys != tc.again || !strings.Contains(rep.Summary(), tc.summaryContent) {
			t.Fatalf("%s: equal %v, %d keys inserted again: %s; want %v, %d, saying %q",
				tc.name, rep.Equal, rep.Collections[0].AgainKeys, rep.Summary(), tc.equal, tc.again, tc.summaryContent)
		}
	}
}
