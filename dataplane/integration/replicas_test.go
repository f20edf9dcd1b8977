package integration_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/capture"
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

// noteBook keeps the notes recorded on a migration, as the status would.
type noteBook struct {
	mu    sync.Mutex
	notes []string
}

func (n *noteBook) note(_ context.Context, note string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notes = append(n.notes, note)
}

// NoteMigration is note, as a syncer's Noter.
func (n *noteBook) NoteMigration(ctx context.Context, _, note string) error {
	n.note(ctx, note)
	return nil
}

func (n *noteBook) all() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.notes, "\n")
}

// A load journaled with more replicas than the target serves (a source
// with more query nodes than it) is replayed with the target's default,
// and the migration's status says so: the log alone would leave the
// operator to find it after the switch.
func TestALoadTheTargetServesWithFewerReplicasIsNoted(t *testing.T) {
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 4, PKType: "int64", Index: "FLAT", Shards: 1, Prefix: "repn_"}
	b := newSyncBed(t, "m-repnote", shape, nil)
	notes := &noteBook{}
	b.applier.NoteTo(notes.note)
	ctx := context.Background()
	req, _ := proto.Marshal(&milvuspb.LoadCollectionRequest{DbName: "repn_db0", CollectionName: "repn_c0", ReplicaNumber: 2})
	e := capture.Entry{Op: capture.OpDDL, Method: "LoadCollection", Database: "repn_db0", Collection: "repn_c0", Request: req, At: time.Now()}
	if _, err := b.journal.Append(ctx, capture.CollectionSubject(b.id, "repn_db0", "repn_c0"), e.Marshal(), "load-1"); err != nil {
		t.Fatal(err)
	}
	b.apply(t)
	b.drain(t)
	if got := notes.all(); !strings.Contains(got, "repn_db0/repn_c0 is loaded with the server's default replicas") || !strings.Contains(got, "2 replicas") {
		t.Fatalf("notes: %q", got)
	}
	if rep, err := b.dst.Replicas(ctx, "repn_db0", "repn_c0"); err != nil || rep.Number != 1 {
		t.Fatalf("the target's replicas: %+v (%v)", rep, err)
	}
}
