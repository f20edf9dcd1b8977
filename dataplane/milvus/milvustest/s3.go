package milvustest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/zdm-io/zdm/eventstore/natscluster"
)

// The credentials the S3 server of S3 accepts: S3AccessKey may do
// anything (the test bed's servers on S3 use it, milvus_server.py's
// --s3-keys default); S3OneBucketKey may read, write and list bucket
// S3OneBucket only, as a cluster's own keys often are.
const (
	S3AccessKey       = "zdm"
	S3SecretKey       = "zdm-secret"
	S3OneBucketKey    = "zdm-one-bucket"
	S3OneBucketSecret = "zdm-one-bucket-secret"
	S3OneBucket       = "one-bucket"
)

// S3 starts an S3-compatible server for the test (see StartS3, with the
// weed binary of the test bed's Python environment) and returns its
// host:port. It is stopped when the test ends.
func S3(t testing.TB) string {
	t.Helper()
	b := Require(t)
	addr, _, stop, err := StartS3(filepath.Join(filepath.Dir(b.Python), "weed"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr
}

// StartS3 starts SeaweedFS (its master, a volume server, a filer and the
// S3 gateway, all in one weed process) keeping its objects on disk under
// dir, on free loopback ports, accepting the keys above only. It returns
// the gateway's host:port once it answers, the process's ID, and what
// stops it.
func StartS3(weed, dir string) (addr string, pid int, stop func(), err error) {
	config := filepath.Join(dir, "s3.json")
	identities := fmt.Sprintf(`{"identities":[`+
		`{"name":"zdm","credentials":[{"accessKey":%q,"secretKey":%q}],"actions":["Admin","Read","Write","List","Tagging"]},`+
		`{"name":"one-bucket","credentials":[{"accessKey":%q,"secretKey":%q}],"actions":["Read:%[5]s","Write:%[5]s","List:%[5]s"]}]}`,
		S3AccessKey, S3SecretKey, S3OneBucketKey, S3OneBucketSecret, S3OneBucket)
	if err := os.WriteFile(config, []byte(identities), 0o600); err != nil {
		return "", 0, nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return "", 0, nil, err
	}
	ports, err := natscluster.FreePorts(8)
	if err != nil {
		return "", 0, nil, err
	}
	// Each bucket takes seven volumes when it is first written to; weed's
	// default of eight volumes holds one bucket. A volume's file grows
	// with what it holds.
	args := []string{"server", "-dir", filepath.Join(dir, "data"), "-ip", "127.0.0.1", "-ip.bind", "127.0.0.1",
		"-master.volumeSizeLimitMB", "256", "-volume.max", "100", "-filer", "-s3", "-s3.config", config, "-s3.port.iceberg", "0", "-s3.port.lance", "0"}
	for i, name := range []string{"master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc"} {
		args = append(args, "-"+name, strconv.Itoa(ports[i]))
	}
	log, err := os.Create(filepath.Join(dir, "s3.log"))
	if err != nil {
		return "", 0, nil, err
	}
	// The process runs in dir, where a relative path to weed (the bench's
	// default, .cache/venv/bin/weed) would name nothing.
	if weed, err = filepath.Abs(weed); err != nil {
		return "", 0, nil, err
	}
	cmd := exec.Command(weed, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return "", 0, nil, fmt.Errorf("start the S3 server (%s, installed with the test bed's Python environment): %w", weed, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = func() {
		_ = cmd.Process.Kill()
		<-exited
		log.Close()
	}
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[6]))
	// Ready once the gateway answers a signed call through its filer.
	c, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(S3AccessKey, S3SecretKey, "")})
	if err != nil {
		stop()
		return "", 0, nil, err
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.ListBuckets(ctx)
		cancel()
		if err == nil {
			return addr, cmd.Process.Pid, stop, nil
		}
		select {
		case <-exited:
		default:
			if time.Now().Before(deadline) {
				continue
			}
		}
		stop()
		data, _ := os.ReadFile(log.Name())
		return "", 0, nil, fmt.Errorf("the S3 server did not answer on %s: %w\n%s", addr, err, tail(string(data), 40))
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

// OnS3 starts a Milvus server of the test's own, named name, on the 12
// ports from basePort, keeping its binlogs in bucket on the S3 server at
// s3 (rootPath "files"); it returns its endpoint. It is stopped, and its
// data removed, when the test ends.
func (b Bed) OnS3(t testing.TB, name string, basePort int, s3, bucket string) string {
	t.Helper()
	return b.startOwn(t, name, basePort, "--s3", s3, "--s3-bucket", bucket, "--s3-keys", S3AccessKey+":"+S3SecretKey)
}

// startOwn starts a Milvus server of the test's own with the script's
// extra arguments, stopped and removed when the test ends; it returns its
// endpoint.
func (b Bed) startOwn(t testing.TB, name string, basePort int, extra ...string) string {
	t.Helper()
	t.Cleanup(func() {
		b.RunPython(t, b.script(), "stop", name, "--root", b.ServersRoot(), "--remove")
	})
	out := b.RunPython(t, b.script(), append([]string{"start", name, "--base-port", strconv.Itoa(basePort), "--root", b.ServersRoot()}, extra...)...)
	lines := strings.Fields(out)
	if len(lines) == 0 {
		t.Fatalf("milvus %s gave no endpoint", name)
	}
	return lines[len(lines)-1]
}
