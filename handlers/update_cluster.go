package handlers

import (
	"context"

	"github.com/zdm-io/zdm/domain"
)

// UpdateCluster changes what an operator may change of a cluster; a nil
// field is left as it is.
type UpdateCluster struct {
	Endpoint    *string
	ProxyListen *string
	Spare       *bool
	Username    *string
	Password    *string
	StoragePath *string
}

// Validate names the first field that is wrong.
func (u UpdateCluster) Validate() error {
	if u.Endpoint != nil {
		if err := ValidateAddress("endpoint", *u.Endpoint, true); err != nil {
			return err
		}
	}
	if u.ProxyListen != nil {
		if err := ValidateAddress("proxy_listen", *u.ProxyListen, false); err != nil {
			return err
		}
	}
	if (u.Password != nil) != (u.Username != nil) {
		return domain.FieldError("password", "is set together with username")
	}
	if u.StoragePath != nil {
		if err := ValidateStoragePath(*u.StoragePath); err != nil {
			return err
		}
	}
	if u.Endpoint == nil && u.ProxyListen == nil && u.Spare == nil && u.Username == nil && u.StoragePath == nil {
		return domain.FieldError("body", "changes nothing: give endpoint, proxy_listen, spare, storage_path or username and password")
	}
	return nil
}

// UpdateCluster applies an update. The endpoint of a cluster in a running
// migration stays (the data plane is connected to it).
func (s *Service) UpdateCluster(ctx context.Context, p domain.Principal, commandID, id string, u UpdateCluster) (*domain.Cluster, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	c, err := s.Cluster(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := authorizeOn(p, "cluster", id, c.Organization, c.Project); err != nil {
		return nil, err
	}
	if u.Endpoint != nil && (c.LockedBy != "" || c.ClaimedBy != "") && *u.Endpoint != c.Endpoint {
		return nil, domain.FieldError("endpoint", "cannot change while the cluster is in a running migration")
	}
	var has *bool
	if u.Username != nil {
		creds := domain.Credentials{Username: *u.Username, Password: *u.Password}
		if err := s.creds.Put(ctx, id, creds); err != nil {
			return nil, err
		}
		v := !creds.Empty()
		has = &v
	}
	return s.clusters.Exec(ctx, id, commandID, p.User, func(c *domain.Cluster) ([]domain.Event, error) {
		if c.Deleted {
			return nil, domain.ErrNotFound
		}
		return []domain.Event{domain.ClusterUpdated{Endpoint: u.Endpoint, ProxyListen: u.ProxyListen, Spare: u.Spare, HasCredentials: has, StoragePath: u.StoragePath}}, nil
	})
}
