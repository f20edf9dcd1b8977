package integration_test

import (
	"context"
	"strings"
	"testing"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
)

// The target loads a collection with as many replicas as the source
// serves it with. The test bed's servers have one query node each, so a
// collection has one replica; asked for two, the target loads it with its
// default and says why, rather than failing the copy.
func TestTheTargetLoadsTheSourcesReplicasOrSaysWhyNot(t *testing.T) {
	bed := milvustest.Empty(t)
	src, dst := milvustest.Dial(t, bed.Source), milvustest.Dial(t, bed.Target)
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 4, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "rep_"}
	milvustest.Seed(t, src, shape)
	shape.Load = false
	milvustest.Seed(t, dst, shape)
	ctx := context.Background()
	rep, err := src.Replicas(ctx, "rep_db0", "rep_c0")
	if err != nil || rep.Number != 1 || len(rep.Groups) != 0 {
		t.Fatalf("the source's replicas: %+v (%v)", rep, err)
	}
	if note, err := dst.LoadAs(ctx, "rep_db0", "rep_c0", nil, rep); err != nil || note != "" {
		t.Fatalf("loading as the source does: note %q, %v", note, err)
	}
	if err := dst.Release(ctx, "rep_db0", "rep_c0"); err != nil {
		t.Fatal(err)
	}
	note, err := dst.LoadAs(ctx, "rep_db0", "rep_c0", nil, milvus.Replicas{Number: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(note, "rep_db0/rep_c0 is loaded with the server's default replicas") || !strings.Contains(note, "2 replicas") {
		t.Fatalf("note: %q", note)
	}
	t.Log(note)
	if got, err := dst.Replicas(ctx, "rep_db0", "rep_c0"); err != nil || got.Number != 1 {
		t.Fatalf("the target's replicas after falling back: %+v (%v)", got, err)
	}
	// A partition's load, as an application makes it through the proxy,
	// falls back alike.
	if err := dst.Release(ctx, "rep_db0", "rep_c0"); err != nil {
		t.Fatal(err)
	}
	if note, err = dst.LoadAs(ctx, "rep_db0", "rep_c0", []string{"_default"}, milvus.Replicas{Number: 2}); err != nil || !strings.Contains(note, "2 replicas") {
		t.Fatalf("loading a partition with two replicas: note %q, %v", note, err)
	}
	if unloaded, err := dst.UnloadedPartitions(ctx, "rep_db0", &milvus.Collection{Database: "rep_db0", Name: "rep_c0", Partitions: []string{"_default"}}); err != nil || len(unloaded) != 0 {
		t.Fatalf("partitions not loaded after falling back: %v (%v)", unloaded, err)
	}
}
