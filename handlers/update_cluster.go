package handlers

import (
	"context"
	"fmt"

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
	// StorageS3 replaces the S3 storage and its keys; one without an
	// endpoint removes it.
	StorageS3        *domain.S3Storage
	StorageAccessKey string
	StorageSecretKey string
	// TLS and ProxyTLS replace the settings; mode "none" removes them.
	TLS      *domain.ClientTLS
	ProxyTLS *domain.ServerTLS
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
	if u.Username != nil {
		if err := validateCredentials(*u.Username, *u.Password); err != nil {
			return err
		}
	}
	if u.StoragePath != nil {
		if err := ValidateStoragePath(*u.StoragePath); err != nil {
			return err
		}
	}
	if u.StorageS3 != nil {
		switch {
		case u.StorageS3.Endpoint == "" && (*u.StorageS3 != domain.S3Storage{} || u.StorageAccessKey != "" || u.StorageSecretKey != ""):
			return domain.FieldError("storage_s3", "is {} to remove it, or a whole storage with its endpoint")
		case u.StorageS3.Endpoint != "" && u.StoragePath != nil && *u.StoragePath != "":
			return domain.FieldError("storage_s3", "give storage_path or storage_s3, not both")
		case u.StorageS3.Endpoint != "":
			if err := ValidateS3(*u.StorageS3, u.StorageAccessKey, u.StorageSecretKey); err != nil {
				return err
			}
		}
	} else if u.StorageAccessKey != "" || u.StorageSecretKey != "" {
		return domain.FieldError("storage_s3", "is required with storage keys")
	}
	if u.Endpoint == nil && u.ProxyListen == nil && u.Spare == nil && u.Username == nil && u.StoragePath == nil && u.StorageS3 == nil &&
		u.TLS == nil && u.ProxyTLS == nil {
		return domain.FieldError("body", "changes nothing: give endpoint, proxy_listen, spare, storage_path, storage_s3, tls, proxy_tls or username and password")
	}
	return validateTLS(u.TLS, u.ProxyTLS)
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
	if err := p.AuthorizeOn("cluster", id, c.Organization, c.Project); err != nil {
		return nil, err
	}
	if u.Endpoint != nil && (c.LockedBy != "" || c.ClaimedBy != "") && *u.Endpoint != c.Endpoint {
		return nil, domain.LockedFieldError("endpoint")
	}
	if u.ProxyListen != nil && *u.ProxyListen != c.ProxyListen && c.ProxyListen != "" && c.LockedBy != "" {
		return nil, domain.LockedProxyError(c.LockedBy)
	}
	if u.ProxyListen != nil && *u.ProxyListen != c.ProxyListen {
		if err := s.freeListen(*u.ProxyListen, id, c.Organization); err != nil {
			return nil, err
		}
	}
	if u.TLS != nil && (c.LockedBy != "" || c.ClaimedBy != "") {
		return nil, domain.LockedFieldError("tls")
	}
	// A cluster has one storage: the one it keeps is removed with the
	// same update.
	setsS3 := u.StorageS3 != nil && u.StorageS3.Endpoint != ""
	if setsS3 && c.StoragePath != "" && (u.StoragePath == nil || *u.StoragePath != "") {
		return nil, domain.FieldError("storage_s3", `the cluster has a storage_path: remove it in the same update ("storage_path": "")`)
	}
	if u.StoragePath != nil && *u.StoragePath != "" && c.StorageS3 != nil && u.StorageS3 == nil {
		return nil, domain.FieldError("storage_path", `the cluster has a storage_s3: remove it in the same update ("storage_s3": {})`)
	}
	if setsS3 {
		if err := s.reachS3(ctx, *u.StorageS3, u.StorageAccessKey, u.StorageSecretKey); err != nil {
			return nil, err
		}
	}
	var mode, proxyMode *string
	if u.TLS != nil {
		v := tlsMode(u.TLS.Mode)
		mode = &v
	}
	if u.ProxyTLS != nil {
		v := tlsMode(u.ProxyTLS.Mode)
		proxyMode = &v
	}
	var has *bool
	if u.Username != nil || u.StorageS3 != nil || u.TLS != nil || u.ProxyTLS != nil {
		// Milvus's credentials and the storage's keys are sealed together:
		// what this update does not change is kept.
		creds, err := s.ClusterCredentials(ctx, id)
		if err != nil {
			return nil, err
		}
		if u.Username != nil {
			creds.Username, creds.Password = *u.Username, *u.Password
			v := !creds.Empty()
			has = &v
		}
		if u.StorageS3 != nil {
			creds.StorageAccessKey, creds.StorageSecretKey = u.StorageAccessKey, u.StorageSecretKey
		}
		if u.TLS != nil {
			creds.TLS = u.TLS
			if u.TLS.Mode == domain.TLSNone {
				creds.TLS = nil
			}
		}
		if u.ProxyTLS != nil {
			creds.ProxyTLS = u.ProxyTLS
			if u.ProxyTLS.Mode == domain.TLSNone {
				creds.ProxyTLS = nil
			}
		}
		if s.creds == nil {
			return nil, fmt.Errorf("update cluster: no credential store is configured")
		}
		if err := s.creds.Put(ctx, id, creds); err != nil {
			return nil, err
		}
	}
	return s.clusters.Exec(ctx, id, commandID, p.User, func(c *domain.Cluster) ([]domain.Event, error) {
		if c.Deleted {
			return nil, domain.ErrNotFound
		}
		return []domain.Event{domain.ClusterUpdated{Endpoint: u.Endpoint, ProxyListen: u.ProxyListen, Spare: u.Spare, HasCredentials: has, StoragePath: u.StoragePath, StorageS3: u.StorageS3,
			TLS: mode, ProxyTLS: proxyMode}}, nil
	})
}
