package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/domain"
)

// s3Bed is two Milvus servers keeping their binlogs in buckets of one
// SeaweedFS, as production clusters keep theirs in S3: started for the
// bench beside the test bed's, and removed after it.
type s3Bed struct {
	s3, source, target string
	stats              map[string]string // /proc stat files: s3, source, target
	stop               func()
}

func startS3Bed() *s3Bed {
	python := os.Getenv("ZDM_MILVUS_PYTHON")
	if python == "" {
		python = filepath.Join(".cache", "venv", "bin", "python")
	}
	dir, err := os.MkdirTemp("", "zdm-s3bench-")
	must(err)
	addr, pid, stopS3, err := milvustest.StartS3(filepath.Join(filepath.Dir(python), "weed"), dir)
	must(err)
	root, err := filepath.Abs(bedRoot())
	must(err)
	b := &s3Bed{s3: addr, stats: map[string]string{"s3": fmt.Sprintf("/proc/%d/stat", pid)}}
	var started []string
	b.stop = func() {
		for _, name := range started {
			if out, err := exec.Command(python, "scripts/milvus_server.py", "stop", name, "--root", root, "--remove").CombinedOutput(); err != nil {
				log.Printf("stop %s: %v %s", name, err, out)
			}
		}
		stopS3()
		_ = os.RemoveAll(dir)
	}
	start := func(name string, port int, bucket string) string {
		started = append(started, name)
		out, err := exec.Command(python, "scripts/milvus_server.py", "start", name, "--base-port", strconv.Itoa(port), "--root", root,
			"--s3", addr, "--s3-bucket", bucket, "--s3-keys", milvustest.S3AccessKey+":"+milvustest.S3SecretKey).CombinedOutput()
		if err != nil {
			b.stop()
			log.Fatalf("start %s on S3: %v\n%s", name, err, out)
		}
		pidFile, err := os.ReadFile(filepath.Join(root, "servers", name, "milvus.pid"))
		if err != nil {
			b.stop()
			log.Fatal(err)
		}
		b.stats[strings.TrimPrefix(name, "s3bench-")] = "/proc/" + strings.TrimSpace(string(pidFile)) + "/stat"
		f := strings.Fields(string(out))
		return f[len(f)-1]
	}
	b.source = start("s3bench-source", 19700, "source-bucket")
	// The target's bucket is the one the one-bucket keys may use: with
	// them, the copy cannot have the S3 server copy from the source's.
	b.target = start("s3bench-target", 19730, milvustest.S3OneBucket)
	return b
}

// cpu is the CPU time of this process and of the S3 bed's three.
func (b *s3Bed) cpu() map[string]time.Duration {
	out := map[string]time.Duration{"zdm": processCPU()}
	for name, path := range b.stats {
		out[name] = statCPU(path)
	}
	return out
}

// settle waits until the S3 bed's servers are idle, as settle does for
// the test bed's.
func (b *s3Bed) settle() {
	settleOn(func() []time.Duration {
		u := b.cpu()
		return []time.Duration{u["s3"], u["source"], u["target"]}
	})
}

// s3Endpoints resolves the S3 bed's servers: with storage and the target
// reached with keys (access, secret), or without storage (a row copy).
type s3Endpoints struct {
	b              *s3Bed
	storage        bool
	access, secret string
}

func (e s3Endpoints) Endpoint(_ context.Context, id string) (milvus.Endpoint, error) {
	ep := milvus.Endpoint{Address: e.b.source, StorageAccessKey: milvustest.S3AccessKey, StorageSecretKey: milvustest.S3SecretKey}
	st := domain.S3Storage{Endpoint: e.b.s3, Bucket: "source-bucket", RootPath: "files"}
	if id == "dst" {
		ep = milvus.Endpoint{Address: e.b.target, StorageAccessKey: e.access, StorageSecretKey: e.secret}
		st.Bucket = milvustest.S3OneBucket
	}
	if e.storage {
		ep.StorageS3 = &st
	}
	return ep, nil
}

// benchS3Copy copies the same collection between two Milvus servers on
// S3 three ways, in turns: by segments with keys that let the S3 server
// copy each file between the buckets itself, by segments with target
// keys of the target's bucket only (every file read and written by zdm),
// and by rows. Each is timed from an empty target to the collection
// indexed and loaded there, with the CPU per row of zdm, both Milvus
// servers and the S3 server.
func benchS3Copy(ctx context.Context, quiet *slog.Logger) {
	b := startS3Bed()
	defer b.stop()
	src, dst := dial(ctx, b.source), dial(ctx, b.target)
	defer src.Close()
	defer dst.Close()
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: *rows, Dim: *dim, PKType: "int64", Index: "FLAT", Load: true, Shards: 2, Seed: 9, Prefix: "bench_"}
	t0 := time.Now()
	must(datatools.Seed(ctx, src, shape, nil))
	must(src.FlushAndWait(ctx, "bench_db0", "bench_c0"))
	fmt.Printf("copy between two Milvus servers on S3 (SeaweedFS %s, one bucket each): %d rows x %d dims, seeded and flushed in %s\n",
		b.s3, *rows, *dim, time.Since(t0).Round(time.Second))
	fmt.Printf("  %-6s %-34s %-10s %s\n", "turn", "side", "rows/s", "CPU per row, us: zdm / source / target / S3 server")
	sides := []struct {
		name string
		res  s3Endpoints
	}{
		{"segments, copied by the S3 server", s3Endpoints{b, true, milvustest.S3AccessKey, milvustest.S3SecretKey}},
		{"segments, streamed through zdm", s3Endpoints{b, true, milvustest.S3OneBucketKey, milvustest.S3OneBucketSecret}},
		{"rows", s3Endpoints{b, false, "", ""}},
	}
	for turn := 1; turn <= 2; turn++ {
		rates := map[string]float64{}
		sourceCPU := map[string]float64{} // above its idle use, per row
		for _, side := range sides {
			must(dst.DropEverything(ctx))
			b.settle()
			// What the source uses idle, so that what a copy costs it
			// can be told from what it costs anyway.
			i0 := b.cpu()
			time.Sleep(2 * time.Second)
			idle := (b.cpu()["source"] - i0["source"]) / 2 // a second's worth
			c := rowcopy.NewCopier(side.res, rowcopy.Config{Workers: workers}, quiet)
			plan, err := c.Plan(ctx, migrationFor(domain.CopyStarted{}))
			must(err)
			m := migrationFor(plan)
			mode := map[bool]string{true: `"copy_mode":"segments"`, false: `"copy_mode":"rows"`}[side.res.storage]
			if !strings.Contains(string(m.Preflight), mode) {
				log.Fatalf("%s: the preflight chose otherwise: %s", side.name, m.Preflight)
			}
			began, before := time.Now(), b.cpu()
			must(c.Copy(ctx, m, func(context.Context, domain.BulkCopyProgressed) error { return nil }))
			elapsed, after := time.Since(began), b.cpu()
			n, err := dst.CountWhere(ctx, "bench_db0", "bench_c0", "")
			must(err)
			if n != *rows {
				log.Fatalf("%s: the target holds %d rows, want %d", side.name, n, *rows)
			}
			per := func(name string) float64 { return perRow(after[name]-before[name], *rows) }
			rates[side.name] = float64(*rows) / elapsed.Seconds()
			sourceCPU[side.name] = max(per("source")-perRow(time.Duration(float64(idle)*elapsed.Seconds()), *rows), 0)
			fmt.Printf("  %-6d %-34s %-10.0f %.1f / %.1f / %.1f / %.1f\n", turn, side.name, rates[side.name], per("zdm"), per("source"), per("target"), per("s3"))
		}
		server, streamed, byRows := rates[sides[0].name], rates[sides[1].name], rates[sides[2].name]
		fmt.Printf("  turn %d: copied by the S3 server / streamed %.2f; segments (by the S3 server) / rows %.2f; the source's CPU per row\n",
			turn, server/streamed, server/byRows)
		fmt.Printf("    above its idle use %.2f of the row copy's (%.1f and %.1f us per row above idle)\n",
			sourceCPU[sides[0].name]/max(sourceCPU[sides[2].name], 0.001), sourceCPU[sides[0].name], sourceCPU[sides[2].name])
	}
	fmt.Println("  (the source's part of a segment copy is its flush, done before the turns, and the listing; \"above idle\" takes out")
	fmt.Println("  the source's use measured idle for 2 s before each side; both copies end with the target's index built and the")
	fmt.Println("  collection loaded; the S3 server serves both Milvus servers' own reads and writes too)")
	fmt.Println()
}
