package integration_test

import (
	"context"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/segcopy"
	"github.com/zdm-io/zdm/dataplane/segcopy/segcopytest"
)

// A cluster's storage in an S3 bucket meets the contract a local one
// does, on a real S3 server; a wrong bucket is told by Check.
func TestS3StorageListsPutsAndRemovesByKey(t *testing.T) {
	addr := milvustest.S3(t)
	ctx := context.Background()
	admin, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4("zdm", "zdm-secret", "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.MakeBucket(ctx, "milvus-bucket", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := segcopy.S3Config{Endpoint: addr, Bucket: "milvus-bucket", RootPath: "files/", AccessKey: "zdm", SecretKey: "zdm-secret"}
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
}
