package milvustest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// S3 starts an S3-compatible server (moto, from the test bed's Python
// environment) on a free loopback port for the test, and returns its
// host:port. It keeps objects in memory and takes any keys.
func S3(t testing.TB) string {
	t.Helper()
	b := Require(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	log, err := os.Create(filepath.Join(t.TempDir(), "s3.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(b.Python, "-m", "moto.server", "-H", "127.0.0.1", "-p", port)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the S3 server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log.Close()
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			data, _ := os.ReadFile(log.Name())
			t.Fatalf("the S3 server did not listen on %s: %s", addr, data)
		}
	}
}

// OnS3 starts a Milvus server of the test's own, named name, on the 12
// ports from basePort, keeping its binlogs in bucket on the S3 server at
// s3 (rootPath "files"); it returns its endpoint. It is stopped, and its
// data removed, when the test ends.
func (b Bed) OnS3(t testing.TB, name string, basePort int, s3, bucket string) string {
	t.Helper()
	return b.startOwn(t, name, basePort, "--s3", s3, "--s3-bucket", bucket)
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
