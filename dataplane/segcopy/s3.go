package segcopy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/zdm-io/zdm/domain"
)

// S3Config is where a cluster keeps its binlogs in an S3-compatible store
// (Milvus's minio section: address and port, bucketName, rootPath, useSSL,
// region, and its keys).
type S3Config struct {
	Endpoint  string // host:port
	Bucket    string
	RootPath  string // Milvus's minio.rootPath; every key is under it
	Region    string
	UseSSL    bool
	AccessKey string
	SecretKey string
}

// S3 is a cluster's storage in an S3-compatible bucket (Milvus with
// storageType minio or remote).
type S3 struct {
	client *minio.Client
	bucket string
	root   string
}

// NewS3 returns the storage cfg names; it does not reach it.
func NewS3(cfg S3Config) (*S3, error) {
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.UseSSL,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 %s: %w", cfg.Endpoint, err)
	}
	return &S3{client: c, bucket: cfg.Bucket, root: strings.Trim(cfg.RootPath, "/")}, nil
}

// maxServerCopy is the largest object one S3 CopyObject call copies.
const maxServerCopy = 5 << 30

// CopyFrom copies an object of from into key without its bytes passing
// through zdm, when from is a bucket of the same S3 endpoint: the server
// copies it. ok is false when it cannot (another endpoint, an object too
// large for one copy, or keys of this bucket that may not read from's):
// the caller streams the object instead. A missing source object is
// fs.ErrNotExist, as Open reports it.
func (s *S3) CopyFrom(ctx context.Context, from Storage, fromKey string, size int64, key string) (ok bool, err error) {
	src, same := from.(*S3)
	if !same || size > maxServerCopy || src.client.EndpointURL().String() != s.client.EndpointURL().String() {
		return false, nil
	}
	_, err = s.client.CopyObject(ctx,
		minio.CopyDestOptions{Bucket: s.bucket, Object: s.object(key)},
		minio.CopySrcOptions{Bucket: src.bucket, Object: src.object(fromKey)})
	switch {
	case err == nil:
		return true, nil
	case minio.ToErrorResponse(err).Code == minio.NoSuchKey:
		return false, fmt.Errorf("copy %s: %w", fromKey, fs.ErrNotExist)
	case ctx.Err() != nil:
		return false, ctx.Err()
	}
	// Anything else (keys that may not read from's bucket, a gateway
	// that does not copy between buckets) is left to the stream, which
	// reports its own errors.
	return false, nil
}

// S3Of returns a cluster's S3 storage as the registry keeps it.
func S3Of(st domain.S3Storage, accessKey, secretKey string) (*S3, error) {
	return NewS3(S3Config{Endpoint: st.Endpoint, Bucket: st.Bucket, RootPath: st.RootPath, Region: st.Region,
		UseSSL: st.UseSSL, AccessKey: accessKey, SecretKey: secretKey})
}

// Check reaches the bucket: a wrong endpoint, key or bucket is told when a
// cluster is registered, not in the middle of a copy.
func (s *S3) Check(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", s.bucket, err)
	}
	if !ok {
		return fmt.Errorf("bucket %s does not exist", s.bucket)
	}
	return nil
}

// object is key's object name in the bucket; a key never leaves the root.
func (s *S3) object(key string) string {
	clean := strings.TrimPrefix(path.Clean("/"+key), "/")
	if s.root == "" {
		return clean
	}
	return s.root + "/" + clean
}

// dir is the object name prefix of the directory prefix names, as a
// local storage reads it ("a/b" and "a/b/" alike).
func (s *S3) dir(prefix string) string {
	p := strings.TrimSuffix(s.object(prefix), "/")
	if p == "" {
		return ""
	}
	return p + "/"
}

// List returns the objects under the directory prefix, by key.
func (s *S3) List(ctx context.Context, prefix string) ([]Object, error) {
	p := s.dir(prefix)
	var out []Object
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: p, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("list %s: %w", p, o.Err)
		}
		key := o.Key
		if s.root != "" {
			key = strings.TrimPrefix(key, s.root+"/")
		}
		out = append(out, Object{Key: key, Size: o.Size})
	}
	return out, nil
}

// Open reads an object; a missing one is fs.ErrNotExist, as for a file.
func (s *S3) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	o, err := s.client.GetObject(ctx, s.bucket, s.object(key), minio.GetObjectOptions{})
	if err == nil {
		_, err = o.Stat() // the request is made on the first read
	}
	if err != nil {
		if o != nil {
			o.Close()
		}
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			return nil, fmt.Errorf("open %s: %w", key, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	return o, nil
}

// Put stores an object: S3 shows an object only once it is whole.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	info, err := s.client.PutObject(ctx, s.bucket, s.object(key), r, size, minio.PutObjectOptions{})
	if err == nil && size >= 0 && info.Size != size {
		err = fmt.Errorf("stored %d bytes of %d", info.Size, size)
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// Path is the object name: a Milvus on S3 imports by names in its bucket.
func (s *S3) Path(key string) string { return s.object(key) }

// Remove deletes every object under the directory prefix.
func (s *S3) Remove(ctx context.Context, prefix string) error {
	p := s.dir(prefix)
	objects := make(chan minio.ObjectInfo)
	listed := make(chan error, 1)
	go func() {
		defer close(objects)
		for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: p, Recursive: true}) {
			if o.Err != nil {
				listed <- o.Err
				return
			}
			select {
			case objects <- o:
			case <-ctx.Done():
				listed <- ctx.Err()
				return
			}
		}
		listed <- nil
	}()
	var errs []error
	for e := range s.client.RemoveObjects(ctx, s.bucket, objects, minio.RemoveObjectsOptions{}) {
		errs = append(errs, fmt.Errorf("remove %s: %w", e.ObjectName, e.Err))
	}
	errs = append(errs, <-listed)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}
