// Command dataplane measures zdm's data plane on the test bed's two real
// Milvus servers, each figure against a baseline measured in the same run:
//
//   - bulk copy of a 200,000-row collection (128-dim vectors): zdm's copier
//     against a ceiling (pre-built batches of the same size inserted with
//     the same concurrency) and a naive single-threaded query-then-insert
//     loop; peak heap during the copy;
//   - the proxy: latency and throughput of insert batches, through the
//     armed proxy (journaling) against direct;
//   - sync lag under a sustained write rate of half the measured ingest
//     ceiling, and the write pause a client sees at the switch;
//   - the switch's write pause on sources of 10 and 50 collections
//     (-switch-collections), a client writing to two of them.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
)

var (
	source = flag.String("source", "127.0.0.1:19530", "source Milvus")
	target = flag.String("target", "127.0.0.1:19560", "target Milvus")
	rows   = flag.Int64("rows", 200000, "rows of the copied collection")
	dim    = flag.Int("dim", 128, "vector dimension")
	only   = flag.String("only", "", "run one part: copy, sync (the proxy, the lag and the switch), switch (the switch's pause by collection count), replicas (the capture's cost on 1 and 3 NATS replicas), syncload (the proxy while a migration syncs) sharedcopy (the copy by one zdmd and by two) many (the copy of many small collections, planned one at a time and several) ratelimit (the copy under options.copy_rate_limit) segcopy (the segment copy against the row copy) lag (the lag and the switch alone) or s3copy (the segment copy between two Milvus servers on S3, by the S3 server and streamed, against the row copy)")
	// The proxy, the capture and the copier run in this process.
	cpuProfile = flag.String("cpuprofile", "", "write this process's CPU profile to `file` (go tool pprof reads it)")
)

var (
	workers   = 4
	page      = 0
	readers   = 0
	rangeRows = 0
)

func init() {
	flag.IntVar(&workers, "workers", workers, "copy writers, and the ceiling's and the proxy clients' concurrency")
	flag.IntVar(&page, "page", page, "rows per copied page and per ceiling batch (0: the copier's default, from a 6 MiB page)")
	flag.IntVar(&readers, "readers", readers, "copy readers (0: the copier's default, 2 x workers)")
	flag.IntVar(&rangeRows, "range-rows", rangeRows, "rows per checkpointed range (0: the copier's default)")
}

func main() {
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		must(err)
		must(pprof.StartCPUProfile(f))
		defer func() { pprof.StopCPUProfile(); must(f.Close()) }()
	}
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	src, dst := dial(ctx, *source), dial(ctx, *target)
	must(src.DropEverything(ctx))
	must(dst.DropEverything(ctx))
	fmt.Printf("zdm data plane benchmark: source %s, target %s\n\n", *source, *target)
	if *only == "switch" {
		benchSync(ctx, src, dst, quiet)
		return
	}
	if *only == "s3copy" {
		benchS3Copy(ctx, quiet)
		return
	}
	if *only == "" || *only == "many" {
		manyCopy(ctx, src, dst, quiet)
		if *only == "many" {
			return
		}
	}
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: *rows, Dim: *dim, PKType: "int64", Index: "FLAT", Load: true, Shards: 2, Seed: 9, Prefix: "bench_"}
	t0 := time.Now()
	must(datatools.Seed(ctx, src, shape, nil))
	fmt.Printf("seeded %d rows x %d dims in %s\n\n", *rows, *dim, time.Since(t0).Round(time.Second))
	col, err := src.DescribeCollection(ctx, "bench_db0", "bench_c0")
	must(err)

	if *only == "" || *only == "copy" {
		benchCopy(ctx, src, dst, col, quiet)
	}
	if *only == "" || *only == "segcopy" {
		benchSegmentCopy(ctx, src, dst, col, quiet)
		if *only == "segcopy" {
			return
		}
	}
	if *only == "" || *only == "ratelimit" {
		rateLimitCopy(ctx, src, dst, col, quiet)
		if *only == "ratelimit" {
			return
		}
	}
	if *only == "sharedcopy" {
		sharedCopy(ctx, dst, col, quiet)
		return
	}
	if *only == "copy" {
		return
	}
	benchSync(ctx, src, dst, quiet)
}

func dial(ctx context.Context, addr string) *milvus.Conn {
	c, err := milvus.Dial(ctx, milvus.Endpoint{Address: addr})
	must(err)
	return c
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return (s[(len(s)-1)/2] + s[len(s)/2]) / 2
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}
