package main

import (
	"context"
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
	for after := uint64(0); ; {
		var page struct {
			Events []struct {
				Seq  uint64    `json:"seq"`
				At   time.Time `json:"at"`
				Type string    `json:"type"`
			} `json:"events"`
			NextAfter uint64 `json:"next_after"`
			More      bool   `json:"more"`
		}
		path := fmt.Sprintf("/v1/migrations/%s/events?steps=true&limit=1000&after=%d", id, after)
		if err := api.Do(ctx, "GET", path, nil, &page); err != nil {
			return 0, err
		}
		for _, e := range page.Events {
			switch {
			case e.Type == domain.TypeLocked && locked.IsZero():
				locked = e.At
			case e.Type == domain.TypeBulkCopied && copied.IsZero():
				copied = e.At
			}
		}
		if !page.More {
			break
		}
		after = page.NextAfter
	}
	if locked.IsZero() || copied.IsZero() {
		return 0, fmt.Errorf("the history of %s has no lock or no end of the copy", id)
	}
	return copied.Sub(locked), nil
}
