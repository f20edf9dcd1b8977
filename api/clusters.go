package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/handlers"
	"github.com/zdm-io/zdm/projections"
)

type clusterRequest struct {
	Name         string     `json:"name"`
	Organization string     `json:"organization"`
	Project      string     `json:"project"`
	Endpoint     string     `json:"endpoint"`
	Username     string     `json:"username"`
	Password     string     `json:"password"`
	Spare        bool       `json:"spare"`
	ProxyListen  string     `json:"proxy_listen"`
	StoragePath  string     `json:"storage_path"`
	StorageS3    *s3Request `json:"storage_s3"`
	// TLS and ProxyTLS are sealed with the password and never answered.
	TLS      *domain.ClientTLS `json:"tls"`
	ProxyTLS *domain.ServerTLS `json:"proxy_tls"`
}

// s3Request is a cluster's storage in an S3 bucket, with its keys; the
// keys are sealed and never answered.
type s3Request struct {
	domain.S3Storage
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
}

// split returns the storage and its keys (none for nil).
func (r *s3Request) split() (st *domain.S3Storage, accessKey, secretKey string) {
	if r == nil {
		return nil, "", ""
	}
	v := r.S3Storage
	return &v, r.AccessKey, r.SecretKey
}

// clusterJSON is a registry entry without anything secret.
type clusterJSON struct {
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
	// TLS and ProxyTLS are the modes only: "one_way" or "mutual".
	TLS      string `json:"tls,omitempty"`
	ProxyTLS string `json:"proxy_tls,omitempty"`
	// ProxyProblem is why its proxy does not serve on the zdmd that
	// answers.
	ProxyProblem string `json:"proxy_problem,omitempty"`
	CreatedAt    string `json:"created_at"`
	UpdatedAt    string `json:"updated_at"`
}

// toClusterJSON shows v, with problems[v.ID] (ProxyProblems).
func toClusterJSON(v *projections.ClusterView, problems map[string]string) clusterJSON {
	return clusterJSON{ProxyProblem: problems[v.ID], ID: v.ID, Name: v.Name, Organization: v.Organization, Project: v.Project, Endpoint: v.Endpoint,
		Status: v.Status, Spare: v.Spare, ProxyListen: v.ProxyListen, StoragePath: v.StoragePath, StorageS3: v.StorageS3, Provisioner: v.Provisioner, MigrationID: v.MigrationID,
		HasCredentials: v.HasCredentials, TLS: v.TLS, ProxyTLS: v.ProxyTLS, CreatedAt: v.CreatedAt.UTC().Format(timeFormat), UpdatedAt: v.UpdatedAt.UTC().Format(timeFormat)}
}

const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func (s *Server) registerCluster(c echo.Context) error {
	var req clusterRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	st, accessKey, secretKey := req.StorageS3.split()
	cl, err := s.cfg.Commands.RegisterCluster(c.Request().Context(), principal(c), commandID(c), handlers.RegisterCluster{
		Name: req.Name, Organization: req.Organization, Project: req.Project, Endpoint: req.Endpoint, Username: req.Username,
		Password: req.Password, Spare: req.Spare, ProxyListen: req.ProxyListen, StoragePath: req.StoragePath,
		StorageS3: st, StorageAccessKey: accessKey, StorageSecretKey: secretKey, TLS: req.TLS, ProxyTLS: req.ProxyTLS})
	if err != nil {
		return err
	}
	waitView(c, s.cfg.Clusters, cl.ID, cl.Seq())
	v, _ := s.cfg.Clusters.Get(cl.ID)
	return c.JSON(http.StatusCreated, toClusterJSON(v, nil)) // its proxy starts after
}

func (s *Server) getCluster(c echo.Context) error {
	v, err := s.visibleCluster(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toClusterJSON(v, s.proxyProblems()))
}

// clusterScope is the organization and project of the cluster a request
// names (see drivable).
func (s *Server) clusterScope(c echo.Context) (org, project string, err error) {
	v, err := s.visibleCluster(c)
	if err != nil {
		return "", "", err
	}
	return v.Organization, v.Project, nil
}

func (s *Server) visibleCluster(c echo.Context) (*projections.ClusterView, error) {
	v, ok := s.cfg.Clusters.Get(c.Param("id"))
	if !ok {
		v, ok = awaitStored[*projections.ClusterView](c, s.cfg.History, s.cfg.Clusters, domain.ClusterStream)
	}
	// Another organization's cluster is answered as one that does not
	// exist: its id tells nothing.
	if !ok || v.Deleted || !principal(c).CanView(v.Organization) {
		return nil, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no cluster " + c.Param("id")}
	}
	return v, nil
}

func (s *Server) deleteCluster(c echo.Context) error {
	cl, err := s.cfg.Commands.DeleteCluster(c.Request().Context(), principal(c), commandID(c), c.Param("id"))
	if err != nil {
		return err
	}
	waitView(c, s.cfg.Clusters, cl.ID, cl.Seq())
	return c.NoContent(http.StatusNoContent)
}

type clusterPatch struct {
	Endpoint    *string    `json:"endpoint"`
	ProxyListen *string    `json:"proxy_listen"`
	Spare       *bool      `json:"spare"`
	Username    *string    `json:"username"`
	Password    *string    `json:"password"`
	StoragePath *string    `json:"storage_path"`
	StorageS3   *s3Request `json:"storage_s3"`
	// TLS and ProxyTLS replace the settings; mode "none" removes them.
	TLS      *domain.ClientTLS `json:"tls"`
	ProxyTLS *domain.ServerTLS `json:"proxy_tls"`
}

func (s *Server) updateCluster(c echo.Context) error {
	var req clusterPatch
	if err := bind(c, &req); err != nil {
		return err
	}
	st, accessKey, secretKey := req.StorageS3.split()
	cl, err := s.cfg.Commands.UpdateCluster(c.Request().Context(), principal(c), commandID(c), c.Param("id"), handlers.UpdateCluster{
		Endpoint: req.Endpoint, ProxyListen: req.ProxyListen, Spare: req.Spare, Username: req.Username, Password: req.Password,
		StoragePath: req.StoragePath, StorageS3: st, StorageAccessKey: accessKey, StorageSecretKey: secretKey,
		TLS: req.TLS, ProxyTLS: req.ProxyTLS})
	if err != nil {
		return err
	}
	waitView(c, s.cfg.Clusters, cl.ID, cl.Seq())
	v, _ := s.cfg.Clusters.Get(cl.ID)
	return c.JSON(http.StatusOK, toClusterJSON(v, s.proxyProblems()))
}
