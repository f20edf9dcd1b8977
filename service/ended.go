package service

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/zdm-io/zdm/domain"
)

// endedBucket holds a mark for each migration that ended and was
// finished, with what a term's start still needs of it: where a switched
// source's calls go.
const endedBucket = "ZDM_ENDED"

// endedMark is the value of a migration's mark.
type endedMark struct {
	State          domain.State `json:"state"`
	SourceID       string       `json:"source_cluster_id"`
	TargetEndpoint string       `json:"target_endpoint,omitempty"`
}

// kvBucket is the part of a KV bucket the marks use.
type kvBucket interface {
	Put(ctx context.Context, key string, value []byte) error
	All(ctx context.Context) (map[string][]byte, error)
}

// endedMarks keeps the marks (handlers.EndedMigrations). An ended
// migration takes no command that changes its state or its switch, so a
// mark stays true; one that is lost, or that cannot be read, sends the
// term's start back to the migration's events.
type endedMarks struct{ kv kvBucket }

// MarkEnded marks m, which ended and was finished.
func (e endedMarks) MarkEnded(ctx context.Context, m *domain.Migration) error {
	if !domain.IsTerminal(m.State) {
		return fmt.Errorf("migration %s is %s, not ended", m.ID, m.State)
	}
	data, err := json.Marshal(endedMark{State: m.State, SourceID: m.Source.ID, TargetEndpoint: m.Switch.TargetEndpoint})
	if err != nil {
		return err
	}
	return e.kv.Put(ctx, m.ID, data)
}

// EndedIDs returns the migrations marked.
func (e endedMarks) EndedIDs(ctx context.Context) (map[string]bool, error) {
	marks, err := e.marks(ctx)
	if err != nil {
		return nil, err
	}
	ids := make(map[string]bool, len(marks))
	for id := range marks {
		ids[id] = true
	}
	return ids, nil
}

// marks returns every mark by migration; a value it cannot read is left
// out, so that its migration is read from its events.
func (e endedMarks) marks(ctx context.Context) (map[string]endedMark, error) {
	all, err := e.kv.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the ended migrations: %w", err)
	}
	out := make(map[string]endedMark, len(all))
	for id, data := range all {
		var mk endedMark
		if json.Unmarshal(data, &mk) == nil && domain.IsTerminal(mk.State) {
			out[id] = mk
		}
	}
	return out, nil
}
