package domain

// Values that the application and the data plane both hold: the data
// plane's adapters depend on domain and on the interfaces handlers
// declares, never on handlers itself.

// Credentials are what zdm keeps sealed of a cluster: its user name and
// password, its storage's keys, its certificates and keys.
type Credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// The keys of the cluster's S3 storage (S3Storage).
	StorageAccessKey string `json:"storage_access_key,omitempty"`
	StorageSecretKey string `json:"storage_secret_key,omitempty"`
	// TLS is how zdm reaches the cluster (nil: plain text); ProxyTLS is
	// its proxy's listener (nil: plain text).
	TLS      *ClientTLS `json:"tls,omitempty"`
	ProxyTLS *ServerTLS `json:"proxy_tls,omitempty"`
}

// Empty reports whether no Milvus credentials are set.
func (c Credentials) Empty() bool { return c.Username == "" && c.Password == "" }

// Sealed reports whether there is anything to seal.
func (c Credentials) Sealed() bool {
	return !c.Empty() || c.StorageAccessKey != "" || c.StorageSecretKey != "" || c.TLS != nil || c.ProxyTLS != nil
}

// S3Storage is where a cluster keeps its binlogs in an S3-compatible
// bucket: Milvus's minio settings (address:port, bucketName, rootPath,
// region, useSSL). Its keys are in Credentials.
type S3Storage struct {
	Endpoint string `json:"endpoint"`
	Bucket   string `json:"bucket"`
	RootPath string `json:"root_path,omitempty"`
	Region   string `json:"region,omitempty"`
	UseSSL   bool   `json:"use_ssl,omitempty"`
}

// Target is a cluster a provisioner made or claimed for a migration.
type Target struct {
	ClusterID   string
	Name        string
	Endpoint    string
	Version     string
	Credentials Credentials
	// StoragePath is the new cluster's local storage, when zdm's hosts
	// reach it (see ClusterRegistered.StoragePath).
	StoragePath string
	// Registered is set when the cluster is already in the registry (a
	// spare from the pool); otherwise zdm registers it.
	Registered bool
}

// StepError is a step failure with a reason an operator can act on.
type StepError struct {
	Reason    string
	Err       error
	Permanent bool
}

func (e *StepError) Error() string { return e.Reason + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *StepError) Unwrap() error { return e.Err }

// Notification kinds.
const (
	NotifyLagUnderThreshold = "lag_under_threshold"
	NotifyFailed            = "failed"
	NotifySwitchedOver      = "switched_over"
	NotifyTimeLimitWarning  = "time_limit_warning"
)

// Notification is one email about a migration.
type Notification struct {
	Kind      string
	To        []string
	Migration *Migration
}
