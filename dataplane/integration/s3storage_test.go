package integration_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/segcopy"
	"github.com/zdm-io/zdm/dataplane/segcopy/segcopytest"
)

// A cluster's storage in an S3 bucket meets the contract a local one
// does, on a real S3 server; a wrong bucket is told by Check.
func TestS3StorageListsPutsAndRemovesByKey(t *testing.T) {
	addr := milvustest.S3(t)
	ctx := context.Background()
	admin, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(milvustest.S3AccessKey, milvustest.S3SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.MakeBucket(ctx, "milvus-bucket", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := segcopy.S3Config{Endpoint: addr, Bucket: "milvus-bucket", RootPath: "files/", AccessKey: milvustest.S3AccessKey, SecretKey: milvustest.S3SecretKey}
	s, err := segcopy.NewS3(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	segcopytest.Contract(t, s, "files/delta_log/1/2/3/9")

	cfg.Bucket = "no-such-bucket"
	wrong, err := segcopy.NewS3(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := wrong.Check(ctx); err == nil || !strings.Contains(err.Error(), "no-such-bucket") {
		t.Fatalf("a missing bucket: %v", err)
	}

	cfg.Bucket, cfg.SecretKey = "milvus-bucket", "not-the-secret"
	refused, err := segcopy.NewS3(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := refused.Check(ctx); err == nil {
		t.Fatal("a wrong secret key was accepted: the S3 server checks no credentials")
	} else {
		t.Logf("a wrong secret key: %v", err)
	}
}

// A segment staged from one bucket into another of the same S3 server is
// copied by the server, its bytes never read by zdm; with target keys
// that may not read the source's bucket, it is streamed instead. Either
// way the staged files are the source's, byte for byte.
func TestSegmentsAreCopiedByTheS3ServerWithinOneEndpoint(t *testing.T) {
	addr := milvustest.S3(t)
	ctx := context.Background()
	admin, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(milvustest.S3AccessKey, milvustest.S3SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"source-bucket", "target-bucket", milvustest.S3OneBucket} {
		if err := admin.MakeBucket(ctx, b, minio.MakeBucketOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"insert_log/1/2/3/100/1": strings.Repeat("rows of field 100 ", 4000),
		"insert_log/1/2/3/101/2": "rows of field 101",
		"delta_log/1/2/3/1":      "deletes",
	}
	for k, v := range files {
		if _, err := admin.PutObject(ctx, "source-bucket", "files/"+k, strings.NewReader(v), int64(len(v)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	storage := func(bucket, key, secret string) *segcopy.S3 {
		s, err := segcopy.NewS3(segcopy.S3Config{Endpoint: addr, Bucket: bucket, RootPath: "files", AccessKey: key, SecretKey: secret})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	source := storage("source-bucket", milvustest.S3AccessKey, milvustest.S3SecretKey)
	for _, tc := range []struct {
		name       string
		target     *segcopy.S3
		serverSide bool
	}{
		{"keys that read both buckets", storage("target-bucket", milvustest.S3AccessKey, milvustest.S3SecretKey), true},
		{"target keys of its own bucket only", storage(milvustest.S3OneBucket, milvustest.S3OneBucketKey, milvustest.S3OneBucketSecret), false},
	} {
		c := &segcopy.Copier{Source: source, Target: tc.target, Stage: "zdm-import/m1"}
		bytes, err := c.CopySegment(ctx, 1, 2, milvus.Segment{ID: 3, PartitionID: 2})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		server, streamed := c.ServerSide.Load(), c.Streamed.Load()
		t.Logf("%s: %d bytes, %d files copied by the server, %d streamed", tc.name, bytes, server, streamed)
		if tc.serverSide && (server != 3 || streamed != 0) || !tc.serverSide && (server != 0 || streamed != 3) {
			t.Fatalf("%s: %d files copied by the server and %d streamed, want all 3 %s", tc.name, server, streamed,
				map[bool]string{true: "by the server", false: "streamed"}[tc.serverSide])
		}
		for k, v := range files {
			r, err := tc.target.Open(ctx, "zdm-import/m1/"+k)
			if err != nil {
				t.Fatalf("%s: %s not staged: %v", tc.name, k, err)
			}
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil || string(got) != v {
				t.Fatalf("%s: %s staged as %d bytes (%v), want the source's %d", tc.name, k, len(got), err, len(v))
			}
		}
	}
	// A file removed since it was listed (its segment compacted away) is
	// told as such by the server-side copy too.
	target := storage("target-bucket", milvustest.S3AccessKey, milvustest.S3SecretKey)
	if _, err := target.CopyFrom(ctx, source, "insert_log/1/2/3/100/9", 10, "zdm-import/m2/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file removed after the listing: %v, want fs.ErrNotExist", err)
	}
}
