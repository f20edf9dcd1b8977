package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/zdm-io/zdm/apiclient"
	"github.com/zdm-io/zdm/domain"
)

// toSync is how long the migration took from the lock to the end of the
// copy (the sync's start), as its history says: the row copy's window,
// the structure made before it, and the indexes, loads and check after
// it. The row copy's own rate flatters the copy stage without it.
func toSync(ctx context.Context, api *apiclient.Client, id string) (time.Duration, error) {
	var locked, copied time.Time
	err := api.Events(ctx, id, 0, true, func(raw json.RawMessage) error {
		var e struct {
			At   time.Time `json:"at"`
			Type string    `json:"type"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return err
		}
		switch {
		case e.Type == domain.TypeLocked && locked.IsZero():
			locked = e.At
		case e.Type == domain.TypeBulkCopied && copied.IsZero():
			copied = e.At
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if locked.IsZero() || copied.IsZero() {
		return 0, fmt.Errorf("the history of %s has no lock or no end of the copy", id)
	}
	return copied.Sub(locked), nil
}
