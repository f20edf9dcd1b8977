package milvus_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"

	"github.com/zdm-io/zdm/adapters/milvus"
)

func newRand() *rand.Rand { return rand.New(rand.NewPCG(42, 42)) }

func dropRequest(db, coll string) *milvuspb.DropCollectionRequest {
	return &milvuspb.DropCollectionRequest{DbName: db, CollectionName: coll}
}

// seed creates shape on c, or fails the test.
func seed(t *testing.T, c *milvus.Conn, shape milvus.Shape) {
	t.Helper()
	if err := milvus.Seed(context.Background(), c, shape, nil); err != nil {
		t.Fatal(err)
	}
}
