package capture

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/domain"
)

// A write held at the switch goes on to the target once the capture is
// disarmed, and is not journaled: the applier would otherwise write it to
// the target again, after the client's later writes.
func TestAWriteHeldAtTheSwitchIsNotJournaled(t *testing.T) {
	j, _ := intentStore(t)
	c := NewCapture(j, nil, nil)
	c.Arm("src", "m-1", domain.Options{})
	ctx := context.Background()
	release, err := c.Hold(ctx, "src")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := proto.Marshal(&milvuspb.DeleteRequest{DbName: "d", CollectionName: "c", Expr: "id in [1]"})
	got := make(chan *call, 1)
	go func() {
		k, err := c.before(ctx, "src", "/milvus.proto.milvus.MilvusService/Delete", req, "", nil)
		if err != nil {
			t.Error(err)
		}
		got <- k
	}()
	select {
	case <-got:
		t.Fatal("a write went on during the hold")
	case <-time.After(100 * time.Millisecond):
	}
	c.Route("src", "127.0.0.1:1")
	c.Disarm("m-1")
	release()
	k := <-got
	if k == nil || k.a != nil {
		t.Fatalf("the held write is still captured: %+v", k)
	}
	resp, _ := proto.Marshal(&milvuspb.MutationResult{})
	if err := c.after(ctx, k, req, resp); err != nil {
		t.Fatal(err)
	}
	if last, err := j.LastSeq(ctx, JournalPrefix("m-1")+">"); err != nil || last != 0 {
		t.Fatalf("journaled after the switch: entry %d (%v)", last, err)
	}
	if c.RouteOf("src") != "127.0.0.1:1" {
		t.Fatal("route lost")
	}
}

// DDL through the proxy excuses changes of what it touched, and only those:
// an alias made meanwhile on another collection still shows.
func TestDDLThroughTheProxyExcusesOnlyWhatItTouched(t *testing.T) {
	j, _ := intentStore(t)
	c := NewCapture(j, nil, nil)
	c.Arm("src", "m-1", domain.Options{})
	ctx := context.Background()
	began := time.Now()
	for _, d := range []struct {
		method string
		msg    proto.Message
	}{
		{"CreateCollection", &milvuspb.CreateCollectionRequest{DbName: "d", CollectionName: "late"}},
		{"CreateDatabase", &milvuspb.CreateDatabaseRequest{DbName: "x"}},
	} {
		req, _ := proto.Marshal(d.msg)
		k, err := c.before(ctx, "src", "/milvus.proto.milvus.MilvusService/"+d.method, req, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		ok, _ := proto.Marshal(&commonpb.Status{})
		c.after(ctx, k, req, ok)
	}
	touched := c.DDLSince("m-1", began.Add(-time.Second))
	for key, want := range map[string]bool{
		"collection d/late": true, "database x": true, "collection x/any": true,
		"collection d/lock_c0": false, "database d": false,
	} {
		if touched(key) != want {
			t.Errorf("touched(%q) = %v, want %v", key, !want, want)
		}
	}
	if c.DDLSince("m-1", time.Now())("collection d/late") {
		t.Error("DDL before t counted")
	}
	base := map[string]string{"collection d/late": "a", "collection d/lock_c0": "aliases []"}
	now := map[string]string{"collection d/late": "b", "collection d/lock_c0": "aliases [sneaky]"}
	if diff := milvus.Changes(milvus.Without(base, touched), milvus.Without(now, touched)); len(diff) != 1 || !strings.Contains(diff[0], "sneaky") {
		t.Fatalf("changes: %v", diff)
	}
}

// What the capture learnt of a cluster's collections is looked up again
// for the next migration of the cluster: it may have changed around the
// proxy in between.
func TestANewMigrationLooksCollectionsUpAgain(t *testing.T) {
	j, _ := intentStore(t)
	c := NewCapture(j, nil, nil)
	lookups := 0
	lookup := func(_ context.Context, _, name string) (string, string, error) {
		lookups++
		return name, "id", nil
	}
	req, _ := proto.Marshal(&milvuspb.DeleteRequest{DbName: "d", CollectionName: "c", Expr: "id in [1]"})
	ok, _ := proto.Marshal(&milvuspb.MutationResult{})
	write := func() {
		k, err := c.before(context.Background(), "src", "/milvus.proto.milvus.MilvusService/Delete", req, "", lookup)
		if err != nil {
			t.Fatal(err)
		}
		c.after(context.Background(), k, req, ok)
	}
	c.Arm("src", "m-1", domain.Options{})
	write()
	write()
	c.Disarm("m-1")
	c.Arm("src", "m-2", domain.Options{})
	write()
	if lookups != 2 {
		t.Fatalf("%d look-ups for two migrations of one collection", lookups)
	}
}

// Writes that find their collection unknown at the same time share one
// look-up.
func TestWritesOfAnUnknownCollectionShareOneLookup(t *testing.T) {
	c, _ := armedCapture(t)
	var lookups atomic.Int32
	release := make(chan struct{})
	lookup := func(_ context.Context, _, name string) (string, string, error) {
		lookups.Add(1)
		<-release
		return name, "id", nil
	}
	calls := make(chan *call, 4)
	for key := range int64(4) {
		go func() {
			k, err := c.before(context.Background(), "src", upsertMethod, upsertOf(t, key), "", lookup)
			if err != nil {
				t.Error(err)
			}
			calls <- k
		}()
	}
	time.Sleep(100 * time.Millisecond) // all four are waiting for the look-up
	close(release)
	for range 4 {
		k := <-calls
		c.after(context.Background(), k, upsertOf(t, 0), answered())
	}
	if n := lookups.Load(); n != 1 {
		t.Fatalf("%d look-ups for one collection", n)
	}
}
