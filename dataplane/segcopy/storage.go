package segcopy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Storage is the object store a Milvus cluster keeps its binlogs in, as
// zdm reaches it. Keys are slash-separated and relative to the cluster's
// storage root ("insert_log/COLLECTION/PARTITION/SEGMENT/FIELD/LOG").
type Storage interface {
	// List returns the objects whose keys start with prefix.
	List(ctx context.Context, prefix string) ([]Object, error)
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Put stores an object whole: a reader never sees part of it, even
	// after a copy killed midway.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Path names key as the cluster's own import reads it.
	Path(key string) string
	// Remove deletes every object under prefix.
	Remove(ctx context.Context, prefix string) error
}

// Object is one stored file.
type Object struct {
	Key  string
	Size int64
}

// Local is a cluster's storage on a file system zdm shares with it
// (Milvus's localStorage.path with storageType local).
type Local struct {
	Root string
}

// List walks the directory prefix names.
func (l Local) List(ctx context.Context, prefix string) ([]Object, error) {
	dir := filepath.Join(l.Root, filepath.FromSlash(strings.TrimSuffix(prefix, "/")))
	var out []Object
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == dir {
				return fs.SkipAll // nothing under prefix
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() || strings.HasSuffix(d.Name(), ".zdm-part") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(l.Root, p)
		if err != nil {
			return err
		}
		out = append(out, Object{Key: filepath.ToSlash(rel), Size: info.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	return out, nil
}

// Open opens a stored file.
func (l Local) Open(_ context.Context, key string) (io.ReadCloser, error) {
	return os.Open(l.Path(key))
}

// Put writes the file beside its place and renames it there.
func (l Local) Put(_ context.Context, key string, r io.Reader, size int64) error {
	dst := l.Path(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".zdm-part"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("wrote %d bytes of %d", n, size)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("put %s: %w", key, err)
	}
	return os.Rename(tmp, dst)
}

// Path is the file's absolute path: a local-storage Milvus imports by it.
func (l Local) Path(key string) string {
	return filepath.Join(l.Root, filepath.FromSlash(path.Clean("/"+key)))
}

// Remove deletes the directory prefix names.
func (l Local) Remove(_ context.Context, prefix string) error {
	return os.RemoveAll(l.Path(strings.TrimSuffix(prefix, "/")))
}
