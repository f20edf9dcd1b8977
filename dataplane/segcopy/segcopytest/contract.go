// Package segcopytest holds the contract every segcopy.Storage meets, for
// the tests of each.
package segcopytest

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/zdm-io/zdm/dataplane/segcopy"
)

// Contract checks that s lists, reads, stores and removes by key as the
// segment copy relies on; path is where s.Path must put "delta_log/1/2/3/9".
func Contract(t *testing.T, s segcopy.Storage, path string) {
	ctx := context.Background()
	if got, err := s.List(ctx, "insert_log/1/"); err != nil || len(got) != 0 {
		t.Fatalf("listing nothing: %v %v", got, err)
	}
	for _, k := range []string{"insert_log/1/2/3/100/7", "insert_log/1/2/3/101/8", "insert_log/1/2/30/100/7", "delta_log/1/2/3/9"} {
		if err := s.Put(ctx, k, strings.NewReader(k), int64(len(k))); err != nil {
			t.Fatal(err)
		}
	}
	// A prefix names a directory, with or without its slash: .../3 is not
	// .../30.
	for _, prefix := range []string{"insert_log/1/2/3/", "insert_log/1/2/3"} {
		got, err := s.List(ctx, prefix)
		if err != nil || len(got) != 2 {
			t.Fatalf("listing %s: %+v %v", prefix, got, err)
		}
		for _, o := range got {
			if !strings.HasPrefix(o.Key, "insert_log/1/2/3/10") || o.Size != int64(len(o.Key)) {
				t.Fatalf("listing %s: %+v", prefix, o)
			}
		}
	}
	r, err := s.Open(ctx, "delta_log/1/2/3/9")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "delta_log/1/2/3/9" || s.Path("delta_log/1/2/3/9") != path {
		t.Fatalf("read %q from %s, want it from %s", b, s.Path("delta_log/1/2/3/9"), path)
	}
	if _, err := s.Open(ctx, "delta_log/1/2/3/10"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("opening a missing object: %v, want fs.ErrNotExist", err)
	}
	// A key never leaves the root.
	if p := s.Path("../../etc/passwd"); strings.Contains(p, "..") || !strings.HasPrefix(p, strings.TrimSuffix(path, "delta_log/1/2/3/9")) {
		t.Fatalf("a key reached %s", p)
	}
	// A short write leaves nothing under the key.
	if err := s.Put(ctx, "insert_log/1/2/4/100/1", strings.NewReader("abc"), 10); err == nil {
		t.Fatal("a short write was taken")
	}
	if got, _ := s.List(ctx, "insert_log/1/2/4/"); len(got) != 0 {
		t.Fatalf("a short write is listed: %+v", got)
	}
	if err := s.Remove(ctx, "insert_log/1/2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.List(ctx, "insert_log/"); len(got) != 0 {
		t.Fatalf("after the removal: %+v", got)
	}
	if got, _ := s.List(ctx, "delta_log/"); len(got) != 1 {
		t.Fatalf("the removal reached another directory: %+v", got)
	}
}
