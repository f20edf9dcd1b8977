package capture

import (
	"context"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// benchSchema is the schema of the benchmark's collection.
var benchSchema = &schemapb.CollectionSchema{Name: "c", Fields: []*schemapb.FieldSchema{
	{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
	{Name: "v", DataType: schemapb.DataType_FloatVector, TypeParams: milvus.KVPairs(map[string]string{"dim": "128"})},
}}

// fakeMilvus answers every call at once: DescribeCollection with
// benchSchema, anything else with an empty message (a success status, or
// a mutation result without keys).
func fakeMilvus(b testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ok, _ := proto.Marshal(&milvuspb.MutationResult{})
	described, _ := proto.Marshal(&milvuspb.DescribeCollectionResponse{Schema: benchSchema})
	s := grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}), grpc.MaxRecvMsgSize(milvus.MaxMessage),
		grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
			var req []byte
			if err := ss.RecvMsg(&req); err != nil {
				return err
			}
			resp := ok
			if m, _ := grpc.MethodFromServerStream(ss); strings.HasSuffix(m, "/DescribeCollection") {
				resp = described
			}
			return ss.SendMsg(&resp)
		}))
	go func() { _ = s.Serve(ln) }()
	b.Cleanup(s.Stop)
	return ln.Addr().String()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProxiedInsert measures what an insert of 100 rows of 128 dims
// costs this process (client, proxy, capture) in front of a server that
// costs nothing: sent to the server directly, through the proxy, through
// the proxy armed for a migration, and through the armed proxy behind an
// endpoint as zdmd serves it (which sorts gRPC from REST connections).
func BenchmarkProxiedInsert(b *testing.B) {
	upstream := fakeMilvus(b)
	b.Run("direct", func(b *testing.B) { benchInserts(b, upstream) })
	for _, name := range []string{"proxy", "armed", "endpoint"} {
		b.Run(name, func(b *testing.B) {
			c, _ := armedCapture(b)
			if name == "proxy" {
				c.Disarm("m-1")
			}
			p := NewProxy("src", func() string { return upstream }, c, nil)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			if name == "endpoint" {
				e := NewEndpoint("src", func() string { return "" }, nil)
				go func() { _ = e.Serve(ln) }()
				defer e.Stop()
				e.Drive(p)
			} else {
				go func() { _ = p.Serve(ln) }()
				defer p.Stop()
			}
			benchInserts(b, ln.Addr().String())
		})
	}
}

func benchInserts(b *testing.B, addr string) {
	ctx := context.Background()
	conn, err := milvus.Dial(ctx, milvus.Endpoint{Address: addr})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	// Each client writes keys of its own, as clients inserting new rows
	// do: the capture lets writes of different keys go together.
	var clients atomic.Int64
	batch := func() []*schemapb.FieldData {
		first := clients.Add(1) * 100
		keys := milvus.Keys{}
		for i := range int64(100) {
			keys.Ints = append(keys.Ints, first+i)
		}
		gen := milvus.RowGen{Schema: benchSchema, Rand: rand.New(rand.NewPCG(1, uint64(first)))}
		return gen.Columns(100, keys, func(int) int64 { return 1 })
	}
	b.SetParallelism(8)
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		cols := batch()
		for pb.Next() {
			if _, err := conn.Insert(ctx, "d", "c", "", cols, 100); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
}
