package milvus_test

import (
	"math/rand/v2"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
)

func newRand() *rand.Rand { return rand.New(rand.NewPCG(42, 42)) }

func dropRequest(db, coll string) *milvuspb.DropCollectionRequest {
	return &milvuspb.DropCollectionRequest{DbName: db, CollectionName: coll}
}
