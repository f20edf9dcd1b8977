package api

import (
	"fmt"
	"testing"

	"github.com/zdm-io/zdm/domain"
)

// A keyed registration retried after its first answer expired meets the
// cluster it made: a conflict naming the key, not an internal error.
func TestAClusterMadeBeforeIsAConflict(t *testing.T) {
	e := classify(fmt.Errorf("register: %w", domain.ErrClusterExists))
	if e.Status != 409 || e.Code != "cluster_exists" || e.Field != "Idempotency-Key" {
		t.Fatalf("%+v, want 409 cluster_exists naming Idempotency-Key", e)
	}
}
