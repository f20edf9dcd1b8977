package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/zdm-io/zdm/dataplane/milvus"

	"github.com/zdm-io/zdm/domain"
)

// Spare is a registered cluster offered as a target.
type Spare struct {
	ID, Name, Organization, Endpoint string
	// InUse says why the Milvus behind it is not free though the spare
	// is ("": it is): another registration of its endpoint is in a
	// running migration, as its source or its target.
	InUse string
}

// SpareRegistry lists spares and their credentials.
type SpareRegistry interface {
	// Spares lists an organization's free spares, and first the one
	// migrationID claimed already, if any: a provision tried again after
	// its claim was stored gets back the spare it claimed.
	Spares(org, migrationID string) []Spare
	ClusterCredentials(ctx context.Context, id string) (domain.Credentials, error)
}

// PoolProvisioner claims one of the empty clusters an operator registered
// as spare in the migration's organization.
type PoolProvisioner struct {
	registry SpareRegistry
}

// NewPoolProvisioner returns a pool provisioner over the registry.
func NewPoolProvisioner(r SpareRegistry) *PoolProvisioner { return &PoolProvisioner{registry: r} }

// Provision picks the first spare that answers, is empty and runs a
// version no older than the source. Each refusal is said in the reason.
func (p *PoolProvisioner) Provision(ctx context.Context, m *domain.Migration) (domain.Target, error) {
	srcCreds, err := p.registry.ClusterCredentials(ctx, m.Source.ID)
	if err != nil {
		return domain.Target{}, err
	}
	srcEP, err := milvus.EndpointOf(m.Source.Endpoint, srcCreds)
	if err != nil {
		return domain.Target{}, &domain.StepError{Reason: "source_unreachable", Err: err}
	}
	src, err := milvus.Dial(ctx, srcEP)
	if err != nil {
		return domain.Target{}, &domain.StepError{Reason: "source_unreachable", Err: err}
	}
	srcVersion, err := src.Version(ctx)
	src.Close()
	if err != nil {
		return domain.Target{}, err
	}
	spares := p.registry.Spares(m.Organization, m.ID)
	if len(spares) == 0 {
		return domain.Target{}, &domain.StepError{Reason: "no_spare_cluster", Permanent: true,
			Err: fmt.Errorf("organization %s has no cluster registered with \"spare\": true", m.Organization)}
	}
	var refusals []string
	for _, s := range spares {
		t, why := p.try(ctx, s, srcVersion)
		if why == "" {
			return t, nil
		}
		refusals = append(refusals, fmt.Sprintf("%s (%s): %s", s.Name, s.ID, why))
	}
	return domain.Target{}, &domain.StepError{Reason: "no_usable_spare", Permanent: true,
		Err: errors.New("every spare was refused: " + strings.Join(refusals, "; "))}
}

func (p *PoolProvisioner) try(ctx context.Context, s Spare, srcVersion string) (domain.Target, string) {
	if s.InUse != "" {
		return domain.Target{}, s.InUse
	}
	creds, err := p.registry.ClusterCredentials(ctx, s.ID)
	if err != nil {
		return domain.Target{}, "credentials: " + err.Error()
	}
	ep, err := milvus.EndpointOf(s.Endpoint, creds)
	if err != nil {
		return domain.Target{}, "tls: " + err.Error()
	}
	c, err := milvus.Dial(ctx, ep)
	if err != nil {
		return domain.Target{}, "unreachable: " + err.Error()
	}
	defer c.Close()
	v, err := c.Version(ctx)
	if err != nil {
		return domain.Target{}, "unreachable: " + err.Error()
	}
	if milvus.CompareVersions(v, srcVersion) < 0 {
		return domain.Target{}, fmt.Sprintf("runs Milvus %s, older than the source's %s", v, srcVersion)
	}
	dbs, err := c.Databases(ctx)
	if err != nil {
		return domain.Target{}, err.Error()
	}
	for _, db := range dbs {
		names, err := c.CollectionNames(ctx, db)
		if err != nil {
			return domain.Target{}, err.Error()
		}
		if len(names) > 0 || db != "default" {
			return domain.Target{}, fmt.Sprintf("not empty: database %s holds %d collections", db, len(names))
		}
	}
	return domain.Target{ClusterID: s.ID, Name: s.Name, Endpoint: s.Endpoint, Version: v, Registered: true}, ""
}

// Release leaves the spare as it is: whatever zdm copied stays for the
// operator to inspect; the registry makes it a spare again.
func (p *PoolProvisioner) Release(context.Context, *domain.Migration) error { return nil }
