package service

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/livesync"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/linger"
	"github.com/zdm-io/zdm/dataplane/provision"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/dataplane/segcopy"
	"github.com/zdm-io/zdm/dataplane/verify"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/handlers"
	"github.com/zdm-io/zdm/metrics"
	"github.com/zdm-io/zdm/projections"
)

// MilvusConfig configures the Milvus data plane.
type MilvusConfig struct {
	// Python, ServerScript and ServerRoot run scripts/milvus_server.py for
	// the local provisioner (defaults: the repository's .cache/venv,
	// scripts/ and .cache/milvus).
	Python         string `yaml:"python"`
	ServerScript   string `yaml:"server_script"`
	ServerRoot     string `yaml:"server_root"`
	LocalFirstPort int    `yaml:"local_first_port"`
	// CopyWorkers, CopyReaders, CopyPageBytes, CopyPageRows,
	// CopyRangeRows and CopyPlanners tune the bulk copy (rowcopy.Config).
	CopyWorkers   int `yaml:"copy_workers"`
	CopyReaders   int `yaml:"copy_readers"`
	CopyPageBytes int `yaml:"copy_page_bytes"`
	CopyPageRows  int `yaml:"copy_page_rows"`
	CopyRangeRows int `yaml:"copy_range_rows"`
	CopyPlanners  int `yaml:"copy_planners"`
	// FingerprintEvery is how often the source's schema is checked for
	// changes made around the proxy (default 10s).
	FingerprintEvery time.Duration `yaml:"fingerprint_every"`
	// SwitchHoldLimit bounds how long a switch holds the applications'
	// writes (default 10s, livesync.DefaultHoldLimit).
	SwitchHoldLimit time.Duration `yaml:"switch_hold_limit"`
	// ExpirySweepEvery is how often a syncing migration deletes from the
	// target the rows the source removed after their time to live
	// (default 2m, livesync.DefaultExpirySweepEvery).
	ExpirySweepEvery time.Duration `yaml:"expiry_sweep_every"`
}

func (c MilvusConfig) withDefaults() MilvusConfig {
	if c.Python == "" {
		c.Python = filepath.Join(".cache", "venv", "bin", "python")
	}
	if c.ServerScript == "" {
		c.ServerScript = filepath.Join("scripts", "milvus_server.py")
	}
	if c.ServerRoot == "" {
		c.ServerRoot = filepath.Join(".cache", "milvus")
	}
	return c
}

// milvusPlane wires the Milvus data plane: the journal's connection and
// buckets once, and a capture, proxies, syncer and copier for each term,
// so that a term starts from nothing the last one left in memory.
func milvusPlane(m *Main) ([]string, error) {
	cfg := m.cfg.Milvus.withDefaults()
	script := provision.ServerScript{Python: cfg.Python, Script: cfg.ServerScript, Root: cfg.ServerRoot}
	reg := spareRegistry{m}
	if len(m.cfg.ImportRelay) > 0 {
		m.importRelay = linger.NewProcess(m.cfg.ImportRelay, m.logger.With("part", "import-relay"))
	}
	m.service.CheckStorageWith(s3Checker{})
	var err error
	if m.journalNC, err = connectNATS(m.embedded, m.cfg, "zdmd-journal"); err != nil {
		return nil, err
	}
	journal, err := m.store.OpenJournalOn(m.baseCtx, m.journalNC)
	if err != nil {
		return nil, err
	}
	positions, err := m.store.KV(m.baseCtx, "ZDM_APPLY")
	if err != nil {
		return nil, err
	}
	// The last key the source gave each collection's inserts (see
	// capture.KeepGivenKeys).
	given, err := m.store.KV(m.baseCtx, "ZDM_GIVEN_KEYS")
	if err != nil {
		return nil, err
	}
	m.endpoints = newEndpoints(m)
	m.lease.Advertise(m.endpoints.advertised)
	var current atomic.Pointer[capture.Capture]
	m.metrics.RegisterKeyWaits(func() metrics.KeyWaits {
		c := current.Load()
		if c == nil {
			return metrics.KeyWaits{}
		}
		n, d := c.KeyWaits()
		return metrics.KeyWaits{Writes: n, Seconds: d.Seconds()}
	})
	claims, err := m.store.Claims(m.baseCtx, m.instance, m.cfg.leaseTTL(), m.logger.With("part", "copy"))
	if err != nil {
		return nil, err
	}
	helperClaims, err := m.store.Claims(m.baseCtx, m.instance+".helper", m.cfg.leaseTTL(), m.logger.With("part", "copy-help"))
	if err != nil {
		return nil, err
	}
	copyConfig := rowcopy.Config{Workers: cfg.CopyWorkers, Readers: cfg.CopyReaders, PageBytes: cfg.CopyPageBytes, PageRows: cfg.CopyPageRows, RangeRows: cfg.CopyRangeRows, Planners: cfg.CopyPlanners, Retry: m.cfg.Retry.Copy}
	helper := rowcopy.NewCopier(reg, copyConfig, m.logger.With("part", "copy-help"))
	helper.Share(copyShare{Claims: helperClaims, service: m.service})
	helper.FollowRateLimit(m.copyRateLimit)
	m.helpCopy = func(ctx context.Context) { m.helpCopies(ctx, helper) }
	provisioners := map[string]handlers.Provisioner{
		"local": provision.NewLocalProvisioner(script, cfg.LocalFirstPort),
		"pool":  provision.NewPoolProvisioner(reg),
	}
	m.plane = func(ctx, lost context.Context) (termPlane, error) {
		capture := capture.NewCapture(journal, m.service, m.logger.With("part", "capture"))
		capture.KeepGivenKeys(given)
		capture.SealPasswords(m.sealer)
		capture.RetryJournal(m.cfg.Retry.Journal)
		// Tied to the lease, not to ctx: at a clean stop the lease is
		// kept while the proxies finish, and their writes are journaled
		// (one left to a repair could not be found if the source assigned
		// its keys); once the lease is lost they are left to the next term.
		capture.ServeTerm(lost, m.lease.HeldUntil)
		current.Store(capture)
		syncer := livesync.NewSyncer(ctx, reg, capture, journal, positions, m.service, m.service,
			livesync.Config{FingerprintEvery: cfg.FingerprintEvery, HoldLimit: cfg.SwitchHoldLimit, ExpirySweepEvery: cfg.ExpirySweepEvery, ApplyRetry: m.cfg.Retry.Apply, Sealer: m.sealer, Notes: m.service}, m.logger.With("part", "sync"))
		copier := rowcopy.NewCopier(reg, copyConfig, m.logger.With("part", "copy"))
		copier.Share(copyShare{Claims: claims, service: m.service})
		copier.NoteTo(m.service)
		copier.FollowRateLimit(m.copyRateLimit)
		return termPlane{
			steps: handlers.Steps{
				Syncer:       syncer,
				Source:       copier,
				Provisioners: provisioners,
				Copier:       copier,
				Verifier:     verify.NewMigrationVerifier(reg, verify.Options{}),
			},
			proxies: &proxies{m: m, capture: capture, driven: map[string]*drivenEndpoint{}},
			wait:    syncer.Wait,
		}, nil
	}
	return slices.Sorted(maps.Keys(provisioners)), nil
}

// Endpoint resolves a registered cluster for the data plane.
func (r spareRegistry) Endpoint(ctx context.Context, id string) (milvus.Endpoint, error) {
	c, err := r.m.service.Cluster(ctx, id)
	if err != nil {
		return milvus.Endpoint{}, err
	}
	creds, err := r.m.service.ClusterCredentials(ctx, id)
	if err != nil {
		return milvus.Endpoint{}, err
	}
	ep, err := milvus.EndpointOf(c.Endpoint, creds)
	ep.StoragePath, ep.StorageS3 = c.StoragePath, c.StorageS3
	if r.m.importRelay != nil {
		ep.ImportDial = r.m.importRelay.Dial
	}
	return ep, err
}

// s3Checker reaches a cluster's S3 storage for the registry.
type s3Checker struct{}

func (s3Checker) CheckS3(ctx context.Context, st domain.S3Storage, accessKey, secretKey string) error {
	s, err := segcopy.S3Of(st, accessKey, secretKey)
	if err != nil {
		return err
	}
	return s.Check(ctx)
}

// spareRegistry offers the registry's spare clusters to the pool.
type spareRegistry struct{ m *Main }

func (r spareRegistry) Spares(org, migrationID string) []provision.Spare {
	return sparesOf(r.m.clusters.List(), org, migrationID)
}

// sparesOf lists an organization's free spares, after the one migrationID
// claimed, if any. A spare whose Milvus another registration has in a
// running migration says so (see endpointHolder), and the pool passes it
// by.
func sparesOf(views []*projections.ClusterView, org, migrationID string) []provision.Spare {
	var out []provision.Spare
	for _, v := range views {
		claimed := v.State.ClaimedBy == migrationID && migrationID != ""
		if !v.Deleted && v.Organization == org && (claimed || v.Spare && v.MigrationID == "") {
			s := provision.Spare{ID: v.ID, Name: v.Name, Organization: v.Organization, Endpoint: v.Endpoint}
			if id, mid := endpointHolder(views, v.Endpoint, v.ID); id != "" {
				s.InUse = fmt.Sprintf("its endpoint is that of cluster %s, in migration %s", id, mid)
			}
			if claimed {
				out = append([]provision.Spare{s}, out...)
				continue
			}
			out = append(out, s)
		}
	}
	return out
}

func (r spareRegistry) ClusterCredentials(ctx context.Context, id string) (domain.Credentials, error) {
	return r.m.service.ClusterCredentials(ctx, id)
}

// copyRateLimit is a migration's copy rate limit as this instance's view
// has it: a change reaches a running copy within a second or so.
func (m *Main) copyRateLimit(_ context.Context, id string) (int64, error) {
	v, ok := m.migrations.Get(id)
	if !ok {
		return 0, fmt.Errorf("migration %s is not in this instance's view", id)
	}
	return v.Options.CopyRateLimit, nil
}
