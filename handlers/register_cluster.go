package handlers

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/zdm-io/zdm/domain"
)

// RegisterCluster is the request to add a cluster to the registry.
type RegisterCluster struct {
	Name         string
	Organization string
	Project      string
	Endpoint     string
	Username     string
	Password     string
	Spare        bool
	ProxyListen  string
	StoragePath  string
	StorageS3    *domain.S3Storage
	// The keys of StorageS3, sealed with the credentials.
	StorageAccessKey string
	StorageSecretKey string
	// TLS is how zdm reaches the cluster, ProxyTLS its proxy's listener
	// (nil or mode "none": plain text); both are sealed.
	TLS      *domain.ClientTLS
	ProxyTLS *domain.ServerTLS
}

// Validate names the first field that is wrong.
func (r RegisterCluster) Validate() error {
	for _, f := range []struct{ name, v string }{{"name", r.Name}, {"organization", r.Organization}, {"project", r.Project}} {
		if err := domain.ValidateName(f.name, f.v); err != nil {
			return err
		}
	}
	if err := ValidateAddress("endpoint", r.Endpoint, true); err != nil {
		return err
	}
	if err := ValidateAddress("proxy_listen", r.ProxyListen, false); err != nil {
		return err
	}
	if r.Password != "" && r.Username == "" {
		return domain.FieldError("username", "is required with a password")
	}
	if err := validateCredentials(r.Username, r.Password); err != nil {
		return err
	}
	if r.StorageS3 != nil {
		if r.StoragePath != "" {
			return domain.FieldError("storage_s3", "give storage_path or storage_s3, not both")
		}
		if err := ValidateS3(*r.StorageS3, r.StorageAccessKey, r.StorageSecretKey); err != nil {
			return err
		}
	} else if r.StorageAccessKey != "" || r.StorageSecretKey != "" {
		return domain.FieldError("storage_s3", "is required with storage keys")
	}
	if err := validateTLS(r.TLS, r.ProxyTLS); err != nil {
		return err
	}
	return ValidateStoragePath(r.StoragePath)
}

// validateCredentials bounds Milvus's user name and password, which are
// sealed and sent to the cluster on every connection.
func validateCredentials(username, password string) error {
	if domain.LongerThan(username, 256) {
		return domain.FieldError("username", "must be at most 256 characters")
	}
	if domain.LongerThan(password, 1024) {
		return domain.FieldError("password", "must be at most 1024 characters")
	}
	return nil
}

// validateTLS checks the TLS settings given (nil: not given).
func validateTLS(c *domain.ClientTLS, s *domain.ServerTLS) error {
	if c != nil {
		if err := c.Validate("tls"); err != nil {
			return err
		}
	}
	if s != nil {
		return s.Validate("proxy_tls")
	}
	return nil
}

// tlsMode is the mode the registry shows for a setting ("" for none).
func tlsMode(mode string) string {
	if mode == domain.TLSNone {
		return ""
	}
	return mode
}

// ValidateStoragePath accepts "" (no storage access) or the absolute path
// of a directory this zdmd can read: a cluster's local storage, which the
// segment copy reads, or writes its import into.
func ValidateStoragePath(v string) error {
	if v == "" {
		return nil
	}
	if !filepath.IsAbs(v) || filepath.Clean(v) != v {
		return domain.FieldError("storage_path", "must be a clean absolute path, for example /var/lib/milvus/data")
	}
	info, err := os.Stat(v)
	if err != nil || !info.IsDir() {
		return domain.FieldError("storage_path", "is not a directory this zdmd can read: "+v)
	}
	return nil
}

// hostName is a DNS name as resolvers take it; the address is dialled,
// logged and shown, so nothing else may ride in it.
var (
	hostName = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9_.])?$`)
	zoneName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`) // an interface, as in fe80::1%eth0
)

// isIPv6 is an IPv6 address in hex (an IPv4 address goes without
// brackets), with or without a zone.
func isIPv6(host string) bool {
	ip, zone, zoned := strings.Cut(host, "%")
	return !strings.Contains(ip, ".") && net.ParseIP(ip) != nil && (!zoned || zoneName.MatchString(zone))
}

// ValidateAddress accepts host:port with a port from 1 to 65535.
func ValidateAddress(field, v string, required bool) error {
	if v == "" {
		if required {
			return domain.FieldError(field, "is required")
		}
		return nil
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		return domain.FieldError(field, "must be host:port, for example 127.0.0.1:19530")
	}
	if bracketed := strings.HasPrefix(v, "["); bracketed && !isIPv6(host) || !bracketed && !hostName.MatchString(host) {
		return domain.FieldError(field, "must have a host name (letters, digits, '.', '-', '_') or an IP address before the port")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return domain.FieldError(field, "must have a port from 1 to 65535")
	}
	return nil
}

// RegisterCluster adds a cluster. Credentials go to the credential store
// before the event, so the event never holds them.
func (s *Service) RegisterCluster(ctx context.Context, p domain.Principal, commandID string, r RegisterCluster) (*domain.Cluster, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if err := p.Authorize(r.Organization, r.Project); err != nil {
		return nil, err
	}
	if !s.dir.HasProject(r.Organization, r.Project) {
		return nil, domain.FieldError("project", fmt.Sprintf("is not a project of organization %s", r.Organization))
	}
	id, keyed := idFor("c-", commandID)
	if err := s.freeListen(r.ProxyListen, id, r.Organization); err != nil {
		return nil, err
	}
	if r.StorageS3 != nil {
		if err := s.reachS3(ctx, *r.StorageS3, r.StorageAccessKey, r.StorageSecretKey); err != nil {
			return nil, err
		}
	}
	if keyed {
		if existing, err := s.clusters.Get(ctx, id); err == nil && existing.Seq() > 0 {
			// A retry whose first answer is no longer kept: its credentials
			// never replace those of the cluster it created.
			return nil, domain.ErrClusterExists
		}
	}
	creds := domain.Credentials{Username: r.Username, Password: r.Password, StorageAccessKey: r.StorageAccessKey, StorageSecretKey: r.StorageSecretKey}
	var mode, proxyMode string
	if r.TLS != nil && r.TLS.Mode != domain.TLSNone {
		creds.TLS, mode = r.TLS, r.TLS.Mode
	}
	if r.ProxyTLS != nil && r.ProxyTLS.Mode != domain.TLSNone {
		creds.ProxyTLS, proxyMode = r.ProxyTLS, r.ProxyTLS.Mode
	}
	if creds.Sealed() {
		if s.creds == nil {
			return nil, fmt.Errorf("register cluster: no credential store is configured")
		}
		if err := s.creds.Put(ctx, id, creds); err != nil {
			return nil, fmt.Errorf("store credentials of %s: %w", id, err)
		}
	}
	return s.clusters.Exec(ctx, id, commandID, p.User, func(c *domain.Cluster) ([]domain.Event, error) {
		if c.Seq() != 0 {
			return nil, domain.ErrClusterExists
		}
		return []domain.Event{domain.ClusterRegistered{
			ID: id, Name: r.Name, Organization: r.Organization, Project: r.Project,
			Endpoint: r.Endpoint, Spare: r.Spare, ProxyListen: r.ProxyListen, StoragePath: r.StoragePath, StorageS3: r.StorageS3, HasCredentials: !creds.Empty(),
			TLS: mode, ProxyTLS: proxyMode,
		}}, nil
	})
}
