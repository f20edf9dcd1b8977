package domain

import (
	"encoding/json"
	"fmt"
)

// SnapshotVersion names the shape of a folded aggregate. Raise it whenever
// a change to an Apply would fold the same events differently: snapshots
// of another version are ignored and the history is replayed in full.
const SnapshotVersion = 3

type snapshot[A any] struct {
	Version   int `json:"version"`
	Aggregate A   `json:"aggregate"`
}

func encodeSnapshot[A any](a A) ([]byte, error) {
	return json.Marshal(snapshot[A]{Version: SnapshotVersion, Aggregate: a})
}

// decodeSnapshot fills a; ok is false for a snapshot of another version.
func decodeSnapshot[A any](data []byte, a A) (ok bool, err error) {
	s := snapshot[A]{Aggregate: a}
	if err := json.Unmarshal(data, &s); err != nil {
		return false, fmt.Errorf("decode snapshot: %w", err)
	}
	return s.Version == SnapshotVersion, nil
}

// Snapshot encodes the folded migration, so that a later load applies only
// the events after it.
func (m *Migration) Snapshot() ([]byte, error) { return encodeSnapshot(m) }

// Restore fills an empty migration from a snapshot; ok is false when the
// snapshot is of another version (replay the history instead).
func (m *Migration) Restore(data []byte) (ok bool, err error) {
	if ok, err = decodeSnapshot(data, m); !ok || err != nil {
		return ok, err
	}
	if m.Notifications == nil {
		m.Notifications = map[string]bool{}
	}
	for _, c := range m.Collections {
		if c.DoneRanges == nil {
			c.DoneRanges = map[string]int64{}
		}
	}
	m.machine.SetState(string(m.State))
	return true, nil
}

// Snapshot encodes the folded cluster.
func (c *Cluster) Snapshot() ([]byte, error) { return encodeSnapshot(c) }

// Restore fills an empty cluster from a snapshot.
func (c *Cluster) Restore(data []byte) (bool, error) { return decodeSnapshot(data, c) }
