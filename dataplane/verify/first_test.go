package verify

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// listingServer lists collections c and new, and answers no listing
// before a read of c has come: the check must read the collections it was
// told first while it lists. A read of gone (dropped) fails.
type listingServer struct {
	*clockServer
	readC chan struct{} // closed at the first read of c
	once  sync.Once
}

func (s *listingServer) ShowCollections(ctx context.Context, r *milvuspb.ShowCollectionsRequest, o ...grpc.CallOption) (*milvuspb.ShowCollectionsResponse, error) {
	select {
	case <-s.readC:
	case <-time.After(5 * time.Second):
		return nil, errors.New("listed before any read of c came")
	}
	return &milvuspb.ShowCollectionsResponse{Status: okStatus, CollectionNames: []string{"c", "new"}}, nil
}

func (s *listingServer) Query(ctx context.Context, r *milvuspb.QueryRequest, o ...grpc.CallOption) (*milvuspb.QueryResults, error) {
	switch r.GetCollectionName() {
	case "gone":
		return nil, errors.New("collection not found")
	case "c":
		s.once.Do(func() { close(s.readC) })
	}
	return s.clockServer.Query(ctx, r, o...)
}

// The collections a held check is told to read first are read while the
// source is listed; one the listing no longer has (dropped meanwhile) is
// left out, its failed reads with it; one only the listing has is read
// after it.
func TestTheCollectionsToReadFirstAreReadWhileTheSourceIsListed(t *testing.T) {
	src := &listingServer{clockServer: &clockServer{clock: 100}, readC: make(chan struct{})}
	dst := &listingServer{clockServer: &clockServer{clock: 200}, readC: make(chan struct{})}
	rep, err := QuickCheckWith(context.Background(), &milvus.Conn{Svc: src}, &milvus.Conn{Svc: dst},
		QuickOptions{OneClock: true, First: [][2]string{{"default", "c"}, {"default", "gone"}}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range rep.Collections {
		names = append(names, c.Collection)
	}
	if !rep.Equal || len(names) != 2 || names[0] != "c" || names[1] != "new" {
		t.Fatalf("the check read %v (equal %v), want c and new", names, rep.Equal)
	}
}

// twoDatabases lists databases a and b, and answers neither's listing
// before both were asked for.
type twoDatabases struct {
	*clockServer
	asked sync.WaitGroup
}

func (s *twoDatabases) ListDatabases(context.Context, *milvuspb.ListDatabasesRequest, ...grpc.CallOption) (*milvuspb.ListDatabasesResponse, error) {
	return &milvuspb.ListDatabasesResponse{Status: okStatus, DbNames: []string{"a", "b"}}, nil
}

func (s *twoDatabases) ShowCollections(_ context.Context, r *milvuspb.ShowCollectionsRequest, _ ...grpc.CallOption) (*milvuspb.ShowCollectionsResponse, error) {
	s.asked.Done()
	both := make(chan struct{})
	go func() { s.asked.Wait(); close(both) }()
	select {
	case <-both:
	case <-time.After(5 * time.Second):
		return nil, errors.New("the databases were listed one after the other")
	}
	return &milvuspb.ShowCollectionsResponse{Status: okStatus, CollectionNames: []string{"c_" + r.GetDbName()}}, nil
}

// The source's databases are listed at once, and every collection of
// each is asked about, in order.
func TestTheDatabasesAreListedAtOnce(t *testing.T) {
	src := &twoDatabases{clockServer: &clockServer{clock: 100}}
	src.asked.Add(2)
	var asked []string
	names, err := listIncluded(context.Background(), &milvus.Conn{Svc: src}, func(db, coll string) bool {
		asked = append(asked, db+"/"+coll)
		return coll == "c_b"
	})
	if err != nil || len(names) != 1 || names[0] != [2]string{"b", "c_b"} || len(asked) != 2 || asked[0] != "a/c_a" {
		t.Fatalf("listed %v (%v), asked about %v", names, err, asked)
	}
}
