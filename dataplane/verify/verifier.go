package verify

import (
	"context"
	"encoding/json"

	"github.com/zdm-io/zdm/dataplane/milvus"

	"github.com/zdm-io/zdm/domain"
)

// MigrationVerifier compares a migration's source and target for the saga.
type MigrationVerifier struct {
	resolve milvus.Resolver
	opt     Options
}

// NewMigrationVerifier returns a verifier over the registry.
func NewMigrationVerifier(r milvus.Resolver, opt Options) *MigrationVerifier {
	return &MigrationVerifier{resolve: r, opt: opt}
}

// Verify runs a verification and returns it as an event.
func (v *MigrationVerifier) Verify(ctx context.Context, m *domain.Migration, phase string) (domain.Verified, error) {
	src, err := milvus.Connect(ctx, v.resolve, m.Source.ID, "source")
	if err != nil {
		return domain.Verified{}, err
	}
	defer src.Close()
	dst, err := milvus.Connect(ctx, v.resolve, m.TargetCluster.ClusterID, "target")
	if err != nil {
		return domain.Verified{}, err
	}
	defer dst.Close()
	rep, err := Verify(ctx, src, dst, v.opt)
	if err != nil {
		return domain.Verified{}, err
	}
	data, _ := json.Marshal(rep)
	return domain.Verified{Phase: phase, Equal: rep.Equal, Report: data}, nil
}
