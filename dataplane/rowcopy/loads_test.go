package rowcopy

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"google.golang.org/grpc"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/domain"
)

// loadServer is a Milvus that serves its collection with replicas
// copies, as a cluster of several query nodes does, and keeps the
// replica count of a collection once it is loading: asked for another, it
// refuses, as Milvus 2.3 does.
type loadServer struct {
	milvuspb.UnimplementedMilvusServiceServer
	replicas int32
	mu       sync.Mutex
	loads    []int32 // the replica number of each load asked for
	loading  int32   // 0: not loaded
}

func (s *loadServer) GetVersion(context.Context, *milvuspb.GetVersionRequest) (*milvuspb.GetVersionResponse, error) {
	return &milvuspb.GetVersionResponse{Status: &commonpb.Status{}, Version: "v2.3.5"}, nil
}

func (s *loadServer) GetReplicas(context.Context, *milvuspb.GetReplicasRequest) (*milvuspb.GetReplicasResponse, error) {
	r := &milvuspb.GetReplicasResponse{Status: &commonpb.Status{}}
	for range s.replicas {
		r.Replicas = append(r.Replicas, &milvuspb.ReplicaInfo{})
	}
	return r, nil
}

func (s *loadServer) LoadCollection(_ context.Context, r *milvuspb.LoadCollectionRequest) (*commonpb.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := max(r.GetReplicaNumber(), 1)
	s.loads = append(s.loads, n)
	if s.loading != 0 && s.loading != n {
		return &commonpb.Status{ErrorCode: commonpb.ErrorCode_IllegalArgument, Code: 1100,
			Reason: "can't change the replica number for loaded collection"}, nil
	}
	s.loading = n
	return &commonpb.Status{}, nil
}

func (s *loadServer) GetLoadState(context.Context, *milvuspb.GetLoadStateRequest) (*milvuspb.GetLoadStateResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	state := commonpb.LoadState_LoadStateNotLoad
	if s.loading != 0 {
		state = commonpb.LoadState_LoadStateLoaded
	}
	return &milvuspb.GetLoadStateResponse{Status: &commonpb.Status{}, State: state}, nil
}

func serveLoads(t *testing.T, s *loadServer) *milvus.Conn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	milvuspb.RegisterMilvusServiceServer(g, s)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	c, err := milvus.Dial(context.Background(), milvus.Endpoint{Address: lis.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// The row copy begins the target's load as it makes the collection, and
// the end of the copy waits for it: begun with the server's default, a
// source served by two replicas got one on the target, and a note saying
// the target could not load two, which it could have. It is begun with
// the source's replicas, and asked for once.
func TestTheTargetsLoadIsBegunWithTheSourcesReplicasAndAskedForOnce(t *testing.T) {
	src, dst := &loadServer{replicas: 2}, &loadServer{}
	s, d := serveLoads(t, src), serveLoads(t, dst)
	c := NewCopier(nil, Config{}, slog.Default())
	var notes []string
	c.NoteTo(noteFunc(func(note string) { notes = append(notes, note) }))
	col := &milvus.Collection{Database: "db", Name: "coll"}
	ctx := context.Background()
	r := preparer{c: c, src: s, dst: d, m: &domain.Migration{ID: "m"}}
	if err := r.startTargetLoad(ctx, col); err != nil {
		t.Fatal(err)
	}
	if err := c.loaded(ctx, "m", s, d, col); err != nil {
		t.Fatal(err)
	}
	if len(dst.loads) != 1 || dst.loads[0] != 2 || len(notes) != 0 {
		t.Fatalf("the target was asked for loads of %v replicas, with notes %q; want one of 2 and none", dst.loads, notes)
	}
	// A collection whose load did not begin as it was made (a segment
	// copy's) is loaded at the end, like the source.
	other := &loadServer{}
	if err := c.loaded(ctx, "m", s, serveLoads(t, other), col); err != nil {
		t.Fatal(err)
	}
	if len(other.loads) != 1 || other.loads[0] != 2 {
		t.Fatalf("a collection not loaded before the end: loads of %v replicas, want one of 2", other.loads)
	}
}

type noteFunc func(string)

func (f noteFunc) NoteMigration(_ context.Context, _, note string) error { f(note); return nil }
