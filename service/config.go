package service

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/zdm-io/zdm/adapters/email"
	"github.com/zdm-io/zdm/api"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/handlers"
	"github.com/zdm-io/zdm/retry"
)

// Config is zdmd.yaml. Flags given on the command line override it.
type Config struct {
	// ImportRelay is the command that runs dataplane/milvus/linger's relay
	// for calls about imports (zdmd sets it to itself; empty: those calls
	// go to the target directly).
	ImportRelay []string `yaml:"-"`
	Listen      string   `yaml:"listen"`
	DataDir     string   `yaml:"data_dir"`
	NATSURL     string   `yaml:"nats_url"`
	NATSListen  string   `yaml:"nats_listen"`
	NATSConfig  string   `yaml:"nats_config"`
	// NATSTLS secures the connections to nats_url.
	NATSTLS NATSTLS `yaml:"nats_tls"`
	// NATSReplicas is how many NATS servers keep each stream and bucket
	// (0: three on a cluster of three or more, else one).
	NATSReplicas int `yaml:"nats_replicas"`
	// Instance names this zdmd among those sharing one NATS (default: the
	// host's name and the API port); each keeps its own views under it.
	Instance string `yaml:"instance"`
	// ProxyPortOffset is added to the port of every cluster's
	// proxy_listen, so that several zdmd can share one host.
	ProxyPortOffset int            `yaml:"proxy_port_offset"`
	HA              HAConfig       `yaml:"ha"`
	DataPlane       string         `yaml:"dataplane"`
	Organizations   []Organization `yaml:"organizations"`
	Tokens          []TokenConfig  `yaml:"tokens"`
	Saga            SagaConfig     `yaml:"saga"`
	Retry           RetryConfig    `yaml:"retry"`
	Simulated       SimulatedShape `yaml:"simulated"`
	Milvus          MilvusConfig   `yaml:"milvus"`
	SMTP            email.Config   `yaml:"smtp"`
	// TimeLimitCheck is how often syncing migrations are checked for the
	// warning a day before their time limit (default 1m).
	TimeLimitCheck time.Duration `yaml:"time_limit_check"`
	// DisableConsole turns the web console at "/" off; the API stays.
	DisableConsole bool `yaml:"disable_console"`
}

// HAConfig tunes how several zdmd share the work.
type HAConfig struct {
	// LeaseTTL is how long the instance driving the migrations may go
	// without renewing its lease before another takes over (default 2s).
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// AdvertiseHost is the host name or address the other instances reach
	// this one's Milvus endpoints at, to relay calls while it drives
	// (default: the proxy_listen host, or this machine's host name when
	// that listens on every address).
	AdvertiseHost string `yaml:"advertise_host"`
}

// Organization lists the projects of one organization.
type Organization struct {
	Name     string   `yaml:"name"`
	Projects []string `yaml:"projects"`
}

// TokenConfig gives an API token a principal. Prefer token_sha256 (the hex
// SHA-256 of the token) so the file holds no usable secret.
type TokenConfig struct {
	User         string   `yaml:"user"`
	Role         string   `yaml:"role"`
	Organization string   `yaml:"organization"`
	Projects     []string `yaml:"projects"`
	Token        string   `yaml:"token"`
	TokenSHA256  string   `yaml:"token_sha256"`
}

// SagaConfig tunes the saga.
type SagaConfig struct {
	LagRecordInterval time.Duration `yaml:"lag_record_interval"`
	// StepAttempts and RetryBackoff are the earlier names of
	// retry.steps.attempts and retry.steps.first.
	StepAttempts int           `yaml:"step_attempts"`
	RetryBackoff time.Duration `yaml:"retry_backoff"`
	Tick         time.Duration `yaml:"tick"`
}

// RetryConfig is every retry's policy; a setting left out keeps its
// default.
type RetryConfig struct {
	// Steps: a failing saga step, before the migration fails with its
	// reason.
	Steps retry.Policy `yaml:"steps"`
	// Copy: a read or write of the bulk copy.
	Copy retry.Policy `yaml:"copy"`
	// Journal: a captured write's journal entry, while its client waits.
	Journal retry.Policy `yaml:"journal"`
	// Apply: a journaled write replayed on the target (until it applies).
	Apply retry.Policy `yaml:"apply"`
	// Events: an event handler (projections, saga, notifier); an event is
	// never skipped.
	Events retry.Policy `yaml:"events"`
	// Store: a command or a read that finds the event store unable to
	// answer for a moment (a NATS node lost, its streams electing leaders).
	Store retry.Policy `yaml:"store"`
}

// storeRetry is retry.store, with the defaults where it leaves a setting
// out.
func (c Config) storeRetry() retry.Policy { return c.Retry.Store.Or(handlers.DefaultStoreRetry()) }

// stepRetry is retry.steps, with the earlier saga keys where it leaves a
// setting out.
func (c Config) stepRetry() retry.Policy {
	return c.Retry.Steps.Or(retry.Policy{Attempts: c.Saga.StepAttempts, First: c.Saga.RetryBackoff})
}

// SimulatedShape shapes the simulated data plane.
type SimulatedShape struct {
	StepLog             string        `yaml:"step_log"`
	Collections         int           `yaml:"collections"`
	RangesPerCollection int           `yaml:"ranges_per_collection"`
	RowsPerRange        int64         `yaml:"rows_per_range"`
	RangeDelay          time.Duration `yaml:"range_delay"`
	LagStart            float64       `yaml:"lag_start"`
	LagStep             time.Duration `yaml:"lag_step"`
}

func DefaultConfig() Config {
	return Config{Listen: "127.0.0.1:8080", DataDir: "./data", DataPlane: "milvus"}
}

// LoadConfig reads path (if any) over the defaults.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("--config: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			// The decoder names the Go type a key is missing from; the
			// operator wrote a file, not a type.
			lines := make([]string, len(te.Errors))
			for i, e := range te.Errors {
				for _, r := range yamlWords {
					e = r.re.ReplaceAllString(e, r.say)
				}
				lines[i] = e
			}
			return cfg, fmt.Errorf("--config %s: %s", path, strings.Join(lines, "; "))
		}
		return cfg, fmt.Errorf("--config %s: %w", path, err)
	}
	return cfg, nil
}

// yamlWords say the decoder's type errors in the file's terms.
var yamlWords = []struct {
	re  *regexp.Regexp
	say string
}{
	{regexp.MustCompile(`field (\S+) not found in type \S+`), "$1 is not a setting zdmd knows (operator guide: Configuration reference)"},
	{regexp.MustCompile("cannot unmarshal !!\\w+ (`[^`]*`) into time\\.Duration"), "$1 is not a duration such as 500ms, 30s or 5m"},
	{regexp.MustCompile("cannot unmarshal !!\\w+ (`[^`]*`) into u?int\\d*"), "$1 is not a whole number"},
	{regexp.MustCompile("cannot unmarshal !!\\w+ (`[^`]*`) into float\\d+"), "$1 is not a number"},
	{regexp.MustCompile("cannot unmarshal !!\\w+ (`[^`]*`) into bool"), "$1 is not true or false"},
	{regexp.MustCompile("cannot unmarshal !!\\w+ (`[^`]*`) into \\[\\]\\S+"), "$1 is not a list"},
	{regexp.MustCompile("cannot unmarshal !!\\w+ (`[^`]*`) into \\S+"), "$1 is not a section of settings"},
}

// Validate names the first setting that is out of range, by its key in
// the configuration file.
func (c Config) Validate() error {
	durations := []struct {
		key string
		v   time.Duration
	}{
		{"saga.lag_record_interval", c.Saga.LagRecordInterval}, {"saga.retry_backoff", c.Saga.RetryBackoff}, {"saga.tick", c.Saga.Tick},
		{"time_limit_check", c.TimeLimitCheck}, {"ha.lease_ttl", c.HA.LeaseTTL}, {"milvus.fingerprint_every", c.Milvus.FingerprintEvery},
		{"milvus.switch_hold_limit", c.Milvus.SwitchHoldLimit}, {"milvus.expiry_sweep_every", c.Milvus.ExpirySweepEvery},
		{"simulated.range_delay", c.Simulated.RangeDelay}, {"simulated.lag_step", c.Simulated.LagStep},
	}
	for _, d := range durations {
		if d.v < 0 {
			return fmt.Errorf("config: %s must not be negative (%s)", d.key, d.v)
		}
	}
	counts := []struct {
		key string
		v   int64
	}{
		{"saga.step_attempts", int64(c.Saga.StepAttempts)}, {"milvus.copy_workers", int64(c.Milvus.CopyWorkers)},
		{"milvus.copy_readers", int64(c.Milvus.CopyReaders)}, {"milvus.copy_page_bytes", int64(c.Milvus.CopyPageBytes)},
		{"milvus.copy_page_rows", int64(c.Milvus.CopyPageRows)}, {"milvus.copy_range_rows", int64(c.Milvus.CopyRangeRows)},
		{"milvus.copy_planners", int64(c.Milvus.CopyPlanners)},
		{"milvus.local_first_port", int64(c.Milvus.LocalFirstPort)}, {"simulated.collections", int64(c.Simulated.Collections)},
		{"simulated.ranges_per_collection", int64(c.Simulated.RangesPerCollection)}, {"simulated.rows_per_range", c.Simulated.RowsPerRange},
	}
	for _, n := range counts {
		if n.v < 0 {
			return fmt.Errorf("config: %s must not be negative (%d)", n.key, n.v)
		}
	}
	for _, p := range []struct {
		key string
		p   retry.Policy
	}{{"retry.steps", c.Retry.Steps}, {"retry.copy", c.Retry.Copy}, {"retry.journal", c.Retry.Journal}, {"retry.apply", c.Retry.Apply}, {"retry.events", c.Retry.Events}, {"retry.store", c.Retry.Store}} {
		if err := p.p.Validate(p.key); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	if c.Retry.Apply.Attempts != 0 || c.Retry.Events.Attempts != 0 {
		return errors.New("config: retry.apply.attempts and retry.events.attempts cannot be set: a journaled write or an event is never skipped")
	}
	if c.Milvus.LocalFirstPort > 65535-12 {
		return fmt.Errorf("config: milvus.local_first_port must leave room for a server's 12 ports below 65536 (%d)", c.Milvus.LocalFirstPort)
	}
	if c.Listen == "" {
		return fmt.Errorf("config: listen (--listen) is required")
	}
	if c.DataPlane != "milvus" && c.DataPlane != "simulated" {
		return fmt.Errorf("config: dataplane (--dataplane) %q is not milvus or simulated", c.DataPlane)
	}
	if c.NATSReplicas < 0 || c.NATSReplicas > 5 {
		return fmt.Errorf("config: nats_replicas (--nats-replicas) must be 0 (automatic) to 5, the most JetStream keeps (%d)", c.NATSReplicas)
	}
	if err := c.NATSTLS.Validate(c.NATSURL); err != nil {
		return err
	}
	if c.Instance != "" && !instanceName.MatchString(c.Instance) {
		return fmt.Errorf("config: instance (--instance) %q must be 1-32 letters, digits, - or _", c.Instance)
	}
	if c.ProxyPortOffset < 0 || c.ProxyPortOffset > 60000 {
		return fmt.Errorf("config: proxy_port_offset must be 0 to 60000 (%d)", c.ProxyPortOffset)
	}
	if c.HA.LeaseTTL != 0 && c.HA.LeaseTTL < time.Second {
		return fmt.Errorf("config: ha.lease_ttl must be at least 1s (%s)", c.HA.LeaseTTL)
	}
	return nil
}

// instanceName is what an instance name may be: it names NATS consumers
// and buckets.
var instanceName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// instance is the configured instance name, or the host's name and the
// API's port.
func (c Config) instance() string {
	if c.Instance != "" {
		return c.Instance
	}
	host, _ := os.Hostname()
	_, port, _ := net.SplitHostPort(c.Listen)
	name := regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(host+"-"+port, "_")
	if len(name) > 32 {
		name = name[len(name)-32:]
	}
	return name
}

func (c Config) leaseTTL() time.Duration {
	if c.HA.LeaseTTL > 0 {
		return c.HA.LeaseTTL
	}
	// Two seconds: a takeover is about a TTL, and the client's longest
	// wait around a killed instance is the takeover and the new term's
	// start, which must stay within 3 s. A holder gives its term up after
	// two thirds of a TTL without a renewal; the election of the lease
	// bucket's leader after a NATS node's loss (1-2 s) outlasts that at
	// 3 s as at 2, and the writes it catches wait for the next term.
	return 2 * time.Second
}

// tokens builds the API's token table; adminToken (ZDM_ADMIN_TOKEN) adds
// a bootstrap admin of every organization.
func (c Config) tokens(adminToken string) (api.Tokens, error) {
	out := api.Tokens{}
	if adminToken != "" {
		out[api.HashToken(adminToken)] = domain.Principal{User: "admin", Role: domain.RoleAdmin}
	}
	for i, t := range c.Tokens {
		where := fmt.Sprintf("tokens[%d]", i)
		role := domain.Role(t.Role)
		if !slices.Contains([]domain.Role{domain.RoleAdmin, domain.RoleOrgAdmin, domain.RoleProjectAdmin, domain.RoleViewer, domain.RoleMetrics}, role) {
			return nil, fmt.Errorf("%s.role: %q is not admin, org_admin, project_admin, viewer or metrics", where, t.Role)
		}
		if t.User == "" {
			return nil, fmt.Errorf("%s.user is required", where)
		}
		if role != domain.RoleAdmin && role != domain.RoleMetrics && t.Organization == "" {
			return nil, fmt.Errorf("%s.organization is required for role %s", where, role)
		}
		if role == domain.RoleProjectAdmin && len(t.Projects) == 0 {
			return nil, fmt.Errorf("%s.projects is required for a project admin", where)
		}
		hash := strings.ToLower(t.TokenSHA256)
		if t.Token != "" {
			hash = api.HashToken(t.Token)
		}
		if len(hash) != 64 {
			return nil, fmt.Errorf("%s: token or token_sha256 (64 hex digits) is required", where)
		}
		out[hash] = domain.Principal{User: t.User, Role: role, Organization: t.Organization, Projects: t.Projects}
	}
	return out, nil
}

// directory is the organizations' projects; none configured accepts all.
type directory map[string][]string

func (d directory) HasProject(org, project string) bool {
	if len(d) == 0 {
		return true
	}
	return slices.Contains(d[org], project)
}

func (c Config) directory() directory {
	d := directory{}
	for _, o := range c.Organizations {
		d[o.Name] = o.Projects
	}
	return d
}
