package segcopy

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLocalStorageListsPutsAndRemovesByKey(t *testing.T) {
	ctx := context.Background()
	l := Local{Root: t.TempDir()}
	if got, err := l.List(ctx, "insert_log/1/"); err != nil || len(got) != 0 {
		t.Fatalf("listing nothing: %v %v", got, err)
	}
	for _, k := range []string{"insert_log/1/2/3/100/7", "insert_log/1/2/3/101/8", "delta_log/1/2/3/9"} {
		if err := l.Put(ctx, k, strings.NewReader(k), int64(len(k))); err != nil {
			t.Fatal(err)
		}
	}
	got, err := l.List(ctx, "insert_log/1/2/3/")
	if err != nil || len(got) != 2 || got[0].Key != "insert_log/1/2/3/100/7" || got[0].Size != int64(len("insert_log/1/2/3/100/7")) {
		t.Fatalf("listing: %+v %v", got, err)
	}
	r, err := l.Open(ctx, "delta_log/1/2/3/9")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "delta_log/1/2/3/9" || l.Path("delta_log/1/2/3/9") != filepath.Join(l.Root, "delta_log", "1", "2", "3", "9") {
		t.Fatalf("read %q from %s", b, l.Path("delta_log/1/2/3/9"))
	}
	// A key never leaves the root.
	if p := l.Path("../../etc/passwd"); !strings.HasPrefix(p, l.Root) {
		t.Fatalf("a key reached %s", p)
	}
	// A short write leaves nothing under the key.
	if err := l.Put(ctx, "insert_log/1/2/4/100/1", strings.NewReader("abc"), 10); err == nil {
		t.Fatal("a short write was taken")
	}
	if _, err := os.Stat(l.Path("insert_log/1/2/4/100/1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a short write left a file: %v", err)
	}
	if got, _ := l.List(ctx, "insert_log/1/2/4/"); len(got) != 0 {
		t.Fatalf("a short write is listed: %+v", got)
	}
	if err := l.Remove(ctx, "insert_log/1/2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.List(ctx, "insert_log/"); len(got) != 0 {
		t.Fatalf("after the removal: %+v", got)
	}
}
