package service

import (
	"errors"

	"github.com/zdm-io/zdm/handlers"
)

// milvusSteps wires the Milvus data plane.
func milvusSteps(*Main) (handlers.Steps, error) {
	return handlers.Steps{}, errors.New("--dataplane milvus: the Milvus data plane is not available in this build; use --dataplane simulated")
}
