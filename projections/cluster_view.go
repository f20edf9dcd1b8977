package projections

import (
	"time"

	"github.com/zdm-io/zdm/domain"
)

// ClusterView is a registry entry as the API shows it. It never holds
// credentials, only whether the cluster has some.
type ClusterView struct {
	ID             string            `json:"id"`
	Name           string            `json:"name"`
	Organization   string            `json:"organization"`
	Project        string            `json:"project"`
	Endpoint       string            `json:"endpoint"`
	Status         string            `json:"status"`
	Spare          bool              `json:"spare"`
	ProxyListen    string            `json:"proxy_listen,omitempty"`
	StoragePath    string            `json:"storage_path,omitempty"`
	StorageS3      *domain.S3Storage `json:"storage_s3,omitempty"`
	Provisioner    string            `json:"provisioner,omitempty"`
	MigrationID    string            `json:"migration_id,omitempty"`
	HasCredentials bool              `json:"has_credentials"`
	TLS            string            `json:"tls,omitempty"`
	ProxyTLS       string            `json:"proxy_tls,omitempty"`
	Deleted        bool              `json:"deleted,omitempty"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
	Seq            uint64            `json:"seq"`
	// State is the folded aggregate; the view's fields are derived from it.
	State domain.Cluster `json:"state"`
}

// NewClusterView returns an empty view for id.
func NewClusterView(id string) *ClusterView { return &ClusterView{ID: id} }

func (v *ClusterView) lastSeq() uint64 { return v.Seq }

func (v *ClusterView) apply(r domain.Record) {
	_ = v.State.Apply(r)
	c := &v.State
	v.Name, v.Organization, v.Project, v.Endpoint = c.Name, c.Organization, c.Project, c.Endpoint
	v.Status, v.Spare, v.ProxyListen, v.Provisioner = c.Status(), c.Spare, c.ProxyListen, c.Provisioner
	v.HasCredentials, v.Deleted, v.StoragePath, v.StorageS3 = c.HasCredentials, c.Deleted, c.StoragePath, c.StorageS3
	v.TLS, v.ProxyTLS = c.TLS, c.ProxyTLS
	v.MigrationID = c.HeldBy()
	v.CreatedAt, v.UpdatedAt, v.Seq = c.CreatedAt, c.UpdatedAt, r.Seq
}
