package domain

import (
	"cmp"
	"fmt"
	"time"
)

// Cluster statuses shown in the registry.
const (
	StatusRunning  = "Running"
	StatusLocked   = "Locked"
	StatusSyncing  = "Syncing"
	StatusMigrated = "Migrated"
	StatusDeleted  = "Deleted"
)

// Cluster event type names.
const (
	TypeClusterRegistered = "zdm.cluster.registered.v1"
	TypeClusterUpdated    = "zdm.cluster.updated.v1"
	TypeClusterLocked     = "zdm.cluster.locked.v1"
	TypeClusterUnlocked   = "zdm.cluster.unlocked.v1"
	TypeClusterClaimed    = "zdm.cluster.claimed.v1"
	TypeClusterActivated  = "zdm.cluster.activated.v1"
	TypeClusterReleased   = "zdm.cluster.released.v1"
	TypeClusterDeleted    = "zdm.cluster.deleted.v1"
)

// ClusterRegistered adds a cluster to the registry. Credentials are never
// part of it: they live in the secret store, keyed by the cluster ID.
type ClusterRegistered struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Organization string `json:"organization"`
	Project      string `json:"project"`
	Endpoint     string `json:"endpoint"`
	Spare        bool   `json:"spare,omitempty"`
	ProxyListen  string `json:"proxy_listen,omitempty"`
	// StoragePath is the cluster's local storage (Milvus's
	// localStorage.path) as zdm's hosts reach it: where the segment copy
	// reads its binlogs, or writes them for its import ("": none).
	StoragePath string `json:"storage_path,omitempty"`
	// StorageS3 is the cluster's storage in an S3-compatible bucket, for
	// the same use; its keys are sealed with the credentials.
	StorageS3 *S3Storage `json:"storage_s3,omitempty"`
	// Provisioner and MigrationID are set for a target zdm provisioned.
	Provisioner    string `json:"provisioner,omitempty"`
	MigrationID    string `json:"migration_id,omitempty"`
	HasCredentials bool   `json:"has_credentials,omitempty"`
	// TLS and ProxyTLS are the modes of the connection to the cluster and
	// of its proxy's listener ("": plain text); their certificates and
	// keys are sealed with the credentials.
	TLS      string `json:"tls,omitempty"`
	ProxyTLS string `json:"proxy_tls,omitempty"`
}

// ClusterUpdated changes what an operator may change of a cluster.
type ClusterUpdated struct {
	Endpoint       *string `json:"endpoint,omitempty"`
	ProxyListen    *string `json:"proxy_listen,omitempty"`
	Spare          *bool   `json:"spare,omitempty"`
	HasCredentials *bool   `json:"has_credentials,omitempty"`
	StoragePath    *string `json:"storage_path,omitempty"`
	// StorageS3 replaces the S3 storage; one without an endpoint removes
	// it.
	StorageS3 *S3Storage `json:"storage_s3,omitempty"`
	// TLS and ProxyTLS change the modes ("" : plain text again).
	TLS      *string `json:"tls,omitempty"`
	ProxyTLS *string `json:"proxy_tls,omitempty"`
}

// ClusterLocked locks a source for a migration (R5).
type ClusterLocked struct {
	MigrationID string `json:"migration_id"`
}

// ClusterUnlocked releases a source; Migrated is set after a switch-over.
type ClusterUnlocked struct {
	MigrationID string `json:"migration_id"`
	Migrated    bool   `json:"migrated,omitempty"`
}

// ClusterClaimed makes a cluster the target of a migration (status Syncing, R6).
type ClusterClaimed struct {
	MigrationID string `json:"migration_id"`
}

// ClusterActivated makes a target the live cluster after the switch (R11).
type ClusterActivated struct {
	MigrationID string `json:"migration_id"`
}

// ClusterReleased hands a target back after a failed or cancelled migration.
type ClusterReleased struct {
	MigrationID string `json:"migration_id"`
	Removed     bool   `json:"removed,omitempty"`
}

// ClusterDeleted removes a cluster from the registry.
type ClusterDeleted struct {
	By string `json:"by"`
}

// EventType implementations.
func (ClusterRegistered) EventType() string { return TypeClusterRegistered }
func (ClusterUpdated) EventType() string    { return TypeClusterUpdated }
func (ClusterLocked) EventType() string     { return TypeClusterLocked }
func (ClusterUnlocked) EventType() string   { return TypeClusterUnlocked }
func (ClusterClaimed) EventType() string    { return TypeClusterClaimed }
func (ClusterActivated) EventType() string  { return TypeClusterActivated }
func (ClusterReleased) EventType() string   { return TypeClusterReleased }
func (ClusterDeleted) EventType() string    { return TypeClusterDeleted }

// Cluster is the aggregate of one registered cluster.
type Cluster struct {
	ClusterRegistered
	LockedBy  string
	ClaimedBy string
	// LockedSeq and ClaimedSeq are the events that set LockedBy and
	// ClaimedBy: of two registrations of one Milvus held at once, the one
	// held first keeps it (handlers' LockSource).
	LockedSeq  uint64
	ClaimedSeq uint64
	Migrated   bool
	Deleted    bool
	// ProxyTLSSeq is the event that last set the proxy's TLS: a listener
	// started before it has certificates that are no longer the cluster's.
	ProxyTLSSeq uint64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     uint64
}

// HeldBy is the migration that holds the cluster, as its source or its
// target ("" if none).
func (c *Cluster) HeldBy() string { return cmp.Or(c.LockedBy, c.ClaimedBy) }

// HeldSince is the stream sequence of the event that made HeldBy's
// migration hold the cluster (0 if none holds it).
func (c *Cluster) HeldSince() uint64 {
	switch {
	case c.LockedBy != "":
		return c.LockedSeq
	case c.ClaimedBy != "":
		return c.ClaimedSeq
	}
	return 0
}

// Status is the registry status of the cluster.
func (c *Cluster) Status() string {
	switch {
	case c.Deleted:
		return StatusDeleted
	case c.LockedBy != "":
		return StatusLocked
	case c.ClaimedBy != "":
		return StatusSyncing
	case c.Migrated:
		return StatusMigrated
	}
	return StatusRunning
}

// Clone returns a copy (a cluster holds no shared mutable parts).
func (c *Cluster) Clone() *Cluster {
	cp := *c
	return &cp
}

// Seq is the stream sequence of the last event applied.
func (c *Cluster) Seq() uint64 { return c.Version }

// Apply folds one cluster event; every cluster event is valid in any state.
func (c *Cluster) Apply(r Record) error {
	switch e := r.Event.(type) {
	case ClusterRegistered:
		c.ClusterRegistered, c.CreatedAt = e, r.At
		c.ClaimedBy, c.ClaimedSeq = e.MigrationID, r.Seq
		if e.ProxyTLS != "" {
			c.ProxyTLSSeq = r.Seq
		}
	case ClusterUpdated:
		if e.Endpoint != nil {
			c.Endpoint = *e.Endpoint
		}
		if e.ProxyListen != nil {
			c.ProxyListen = *e.ProxyListen
		}
		if e.Spare != nil {
			c.Spare = *e.Spare
		}
		if e.StoragePath != nil {
			c.StoragePath = *e.StoragePath
		}
		if e.StorageS3 != nil {
			c.StorageS3 = e.StorageS3
			if e.StorageS3.Endpoint == "" {
				c.StorageS3 = nil
			}
		}
		if e.HasCredentials != nil {
			c.HasCredentials = *e.HasCredentials
		}
		if e.TLS != nil {
			c.TLS = *e.TLS
		}
		if e.ProxyTLS != nil {
			c.ProxyTLS, c.ProxyTLSSeq = *e.ProxyTLS, r.Seq
		}
	case ClusterLocked:
		if c.LockedBy != e.MigrationID {
			c.LockedSeq = r.Seq
		}
		c.LockedBy = e.MigrationID
	case ClusterUnlocked:
		if c.LockedBy == e.MigrationID {
			c.LockedBy = ""
			c.Migrated = c.Migrated || e.Migrated
		}
	case ClusterClaimed:
		if c.ClaimedBy != e.MigrationID {
			c.ClaimedSeq = r.Seq
		}
		c.ClaimedBy, c.Spare = e.MigrationID, false
	case ClusterActivated:
		c.ClaimedBy = ""
	case ClusterReleased:
		if c.ClaimedBy == e.MigrationID {
			c.ClaimedBy = ""
			c.Spare = c.Provisioner == ""
			c.Deleted = c.Deleted || e.Removed
		}
	case ClusterDeleted:
		c.Deleted = true
	}
	if r.Seq > c.Version {
		c.Version = r.Seq
	}
	c.UpdatedAt = r.At
	return nil
}

// LockFor decides the lock of a source for a migration. Locking again for
// the same migration changes nothing, so a retried step is harmless.
func (c *Cluster) LockFor(migrationID string) ([]Event, error) {
	switch {
	case c.Deleted || c.ID == "":
		return nil, ErrClusterDeleted
	case c.LockedBy == migrationID:
		return nil, nil
	case c.LockedBy != "":
		return nil, &BusyError{ClusterID: c.ID, MigrationID: c.LockedBy}
	case c.ClaimedBy != "":
		return nil, &BusyError{ClusterID: c.ID, MigrationID: c.ClaimedBy}
	}
	return []Event{ClusterLocked{MigrationID: migrationID}}, nil
}

// Delete decides the removal of a cluster; a locked one stays (R5), and so
// does the target of a running migration.
func (c *Cluster) Delete(actor string) ([]Event, error) {
	switch {
	case c.Deleted || c.ID == "":
		return nil, ErrNotFound
	case c.LockedBy != "":
		return nil, fmt.Errorf("%w: cluster %s is the source of migration %s", ErrClusterLocked, c.ID, c.LockedBy)
	case c.ClaimedBy != "":
		return nil, fmt.Errorf("%w: cluster %s is the target of migration %s", ErrClusterLocked, c.ID, c.ClaimedBy)
	}
	return []Event{ClusterDeleted{By: actor}}, nil
}
