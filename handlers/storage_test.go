package handlers_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore/estest"
	"github.com/zdm-io/zdm/handlers"
)

type unreachable struct{ asked int }

func (u *unreachable) CheckS3(_ context.Context, s domain.S3Storage, accessKey, _ string) error {
	u.asked++
	return errors.New("403 Forbidden for " + accessKey)
}

// A registration whose S3 storage this zdmd cannot reach is refused on
// storage_s3 with the reason, and records nothing.
func TestAnS3StorageZdmCannotReachIsRefused(t *testing.T) {
	store := estest.NewStore(t)
	svc := handlers.NewService(handlers.ServiceConfig{Log: store})
	check := &unreachable{}
	svc.CheckStorageWith(check)
	_, err := svc.RegisterCluster(context.Background(), admin, "reg-s3", handlers.RegisterCluster{Name: "prod", Organization: "acme", Project: "p",
		Endpoint: "h:1", StorageS3: &domain.S3Storage{Endpoint: "s3:9000", Bucket: "milvus-bucket"}, StorageAccessKey: "ak", StorageSecretKey: "sk"})
	var fe *domain.ValidationError
	if !errors.As(err, &fe) || fe.Field != "storage_s3" || !strings.Contains(err.Error(), "403 Forbidden for ak") || check.asked != 1 {
		t.Fatalf("got %v (asked %d)", err, check.asked)
	}
	if subjects, _ := store.Subjects(context.Background(), domain.ClusterSubject); len(subjects) != 0 {
		t.Fatalf("a refused registration stored events: %v", subjects)
	}
}
