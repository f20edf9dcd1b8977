package domain

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
)

// Defaults from the product specification.
const (
	DefaultLagThresholdSeconds = 10.0
	DefaultSyncTimeLimit       = 7 * 24 * time.Hour
	// SyncTimeLimitWarning is how long before the limit the operator is warned.
	SyncTimeLimitWarning = 24 * time.Hour
)

// Policies for a forbidden operation reaching the proxy during a migration.
const (
	PolicyReject = "reject"
	PolicyFail   = "fail"
)

// What to do with an autoID primary key when the target cannot take the
// source's keys for it (Milvus before 2.6.3).
const (
	AutoIDRefuse       = "refuse"
	AutoIDPreserveKeys = "preserve_keys"
)

// How the copy moves rows (Options.CopyMode).
const (
	CopyModeAuto     = "auto"
	CopyModeRows     = "rows"
	CopyModeSegments = "segments"
)

// Provisioners known to zdm.
const (
	ProvisionerLocal     = "local"
	ProvisionerPool      = "pool"
	ProvisionerSimulated = "simulated"
)

// Options tune one migration.
type Options struct {
	LagThresholdSeconds float64  `json:"lag_threshold_seconds"`
	SyncTimeLimit       Duration `json:"sync_time_limit"`
	OnForbiddenOp       string   `json:"on_forbidden_op"`
	Notify              []string `json:"notify,omitempty"`
	AutoID              string   `json:"auto_id,omitempty"`
	// CopyRateLimit bounds the rows per second the row copy reads from
	// the source (0: no limit), for a source whose searches must keep
	// their latency. It can be changed while the copy runs.
	CopyRateLimit int64 `json:"copy_rate_limit,omitempty"`
	// CopyMode is how the copy moves rows: CopyModeSegments copies the
	// source's flushed segments into the target's storage and imports
	// them, CopyModeRows reads rows and inserts them, CopyModeAuto (the
	// default) takes segments where both clusters allow it.
	CopyMode string `json:"copy_mode,omitempty"`
}

// ClusterRef names a cluster and the organization and project it belongs to.
type ClusterRef struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Organization string `json:"organization"`
	Project      string `json:"project"`
	Endpoint     string `json:"endpoint"`
}

// TargetSpec is what the operator asks for: a new cluster (R4).
type TargetSpec struct {
	Name         string `json:"name"`
	Project      string `json:"project"`
	Organization string `json:"organization,omitempty"`
	Provisioner  string `json:"provisioner"`
}

// LagThresholdRange is what a lag threshold must be (0 stands for the
// default only where it was left out).
const LagThresholdRange = "must be more than 0 and at most 86400 seconds (left out: 10)"

// WithDefaults fills the options an operator left out.
func (o Options) WithDefaults() Options {
	if o.LagThresholdSeconds == 0 {
		o.LagThresholdSeconds = DefaultLagThresholdSeconds
	}
	if o.SyncTimeLimit == 0 {
		o.SyncTimeLimit = Duration(DefaultSyncTimeLimit)
	}
	if o.OnForbiddenOp == "" {
		o.OnForbiddenOp = PolicyReject
	}
	if o.AutoID == "" {
		o.AutoID = AutoIDRefuse
	}
	if o.CopyMode == "" {
		o.CopyMode = CopyModeAuto
	}
	return o
}

// Validate reports the first option that is out of range, naming its field.
func (o Options) Validate() error {
	if o.LagThresholdSeconds < 0 || o.LagThresholdSeconds > 86400 {
		return FieldError("options.lag_threshold_seconds", LagThresholdRange)
	}
	if o.SyncTimeLimit < 0 || time.Duration(o.SyncTimeLimit) > 365*24*time.Hour {
		return FieldError("options.sync_time_limit", "must be a positive duration of at most 8760h")
	}
	if o.OnForbiddenOp != "" && o.OnForbiddenOp != PolicyReject && o.OnForbiddenOp != PolicyFail {
		return FieldError("options.on_forbidden_op", `must be "reject" or "fail"`)
	}
	if o.AutoID != "" && o.AutoID != AutoIDRefuse && o.AutoID != AutoIDPreserveKeys {
		return FieldError("options.auto_id", `must be "refuse" or "preserve_keys"`)
	}
	switch o.CopyMode {
	case "", CopyModeAuto, CopyModeRows, CopyModeSegments:
	default:
		return FieldError("options.copy_mode", `must be "auto", "rows" or "segments"`)
	}
	if err := validateCopyRateLimit(o.CopyRateLimit); err != nil {
		return err
	}
	for i, addr := range o.Notify {
		// The document promises a bare address (format: email): what is
		// stored is what is shown and what RCPT TO gets, so no display
		// name, comment or surrounding space.
		if a, err := mail.ParseAddress(addr); err != nil || a.Address != addr || a.Name != "" {
			return FieldError(fmt.Sprintf("options.notify[%d]", i), fmt.Sprintf("%q is not an email address (want name@domain alone)", addr))
		}
	}
	return nil
}

// MaxCopyRateLimit is the largest copy rate limit, in rows per second.
const MaxCopyRateLimit = 1_000_000_000

func validateCopyRateLimit(v int64) error {
	if v < 0 || v > MaxCopyRateLimit {
		return FieldError("options.copy_rate_limit", "must be between 0 (no limit) and 1000000000 rows per second")
	}
	return nil
}

// ValidateTarget checks the requested target.
func (t TargetSpec) Validate() error {
	if err := ValidateName("target.name", t.Name); err != nil {
		return err
	}
	if err := ValidateName("target.project", t.Project); err != nil {
		return err
	}
	switch t.Provisioner {
	case ProvisionerLocal, ProvisionerPool, ProvisionerSimulated:
	case "":
		return FieldError("target.provisioner", "is required")
	default:
		return FieldError("target.provisioner", `must be "local", "pool" or "simulated"`)
	}
	return nil
}

// ValidateName accepts the names zdm uses for clusters, organizations and
// projects: 1 to 63 letters, digits, '-', '_' or '.'.
func ValidateName(field, v string) error {
	if v == "" {
		return FieldError(field, "is required")
	}
	if len(v) > 63 {
		return FieldError(field, "must be at most 63 characters")
	}
	for _, r := range v {
		ok := r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return FieldError(field, "may hold only letters, digits, '-', '_' and '.'")
		}
	}
	return nil
}

// Duration is a time.Duration written as text ("168h", "30m") in JSON.
type Duration time.Duration

// MarshalText writes the duration the way time.ParseDuration reads it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads "168h", "90m", "7d" (days are accepted for operators).
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err != nil || fmt.Sprint(days) != n {
			return fmt.Errorf("invalid duration %q", s)
		}
		*d = Duration(time.Duration(days) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q", s)
	}
	*d = Duration(v)
	return nil
}
