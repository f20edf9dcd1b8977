package handlers

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/zdm-io/zdm/domain"
)

// StorageChecker reaches a cluster's S3 storage with its keys; the data
// plane provides it.
type StorageChecker interface {
	CheckS3(ctx context.Context, s domain.S3Storage, accessKey, secretKey string) error
}

// CheckStorageWith has registrations and updates reach the S3 storage
// they name before they are recorded: a wrong endpoint, bucket or key is
// told then, not in the middle of a copy.
func (s *Service) CheckStorageWith(c StorageChecker) { s.storage = c }

var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// ValidateS3 names the first field of an S3 storage that is wrong.
func ValidateS3(s domain.S3Storage, accessKey, secretKey string) error {
	if err := ValidateAddress("storage_s3.endpoint", s.Endpoint, true); err != nil {
		return err
	}
	if !bucketName.MatchString(s.Bucket) {
		return domain.FieldError("storage_s3.bucket", "must be a bucket name: 3 to 63 lower-case letters, digits, dots and hyphens")
	}
	if domain.LongerThan(s.RootPath, 1024) || strings.Contains("/"+s.RootPath+"/", "/../") {
		return domain.FieldError("storage_s3.root_path", "must be Milvus's minio.rootPath, for example files")
	}
	if domain.LongerThan(s.Region, 64) {
		return domain.FieldError("storage_s3.region", "must be at most 64 characters")
	}
	if (accessKey == "") != (secretKey == "") {
		return domain.FieldError("storage_s3.secret_key", "is set together with storage_s3.access_key")
	}
	if domain.LongerThan(accessKey, 1024) {
		return domain.FieldError("storage_s3.access_key", "must be at most 1024 characters")
	}
	if domain.LongerThan(secretKey, 1024) {
		return domain.FieldError("storage_s3.secret_key", "must be at most 1024 characters")
	}
	return nil
}

// reachS3 checks that this zdmd reaches the bucket with the keys.
func (s *Service) reachS3(ctx context.Context, st domain.S3Storage, accessKey, secretKey string) error {
	if s.storage == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := s.storage.CheckS3(ctx, st, accessKey, secretKey); err != nil {
		return domain.FieldError("storage_s3", fmt.Sprintf("this zdmd cannot reach bucket %s at %s: %v", st.Bucket, st.Endpoint, err))
	}
	return nil
}
