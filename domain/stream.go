package domain

import (
	"errors"
	"fmt"
	"time"
)

// ErrConflict means another writer changed the aggregate first; reload and
// decide again.
var ErrConflict = errors.New("concurrent change: the aggregate was changed by another writer")

// ErrAlreadyStored means a batch's command was stored by an earlier try:
// the aggregate holds it already, and nothing was appended this time.
var ErrAlreadyStored = errors.New("command already stored")

// ErrCommandReused means a command ID was used before for another
// aggregate: the batch was not stored.
var ErrCommandReused = errors.New("command ID already used for another aggregate")

// Subject prefixes of the event stream, one subject per aggregate.
const (
	SubjectRoot      = "zdm.events"
	MigrationSubject = SubjectRoot + ".migration."
	ClusterSubject   = SubjectRoot + ".cluster."
)

// Batch is what one command appends: all of its events at once, with who
// asked and when. CommandID makes a retried command count once.
type Batch struct {
	CommandID string
	Actor     string
	At        time.Time
	Events    []Event
}

// MigrationStream is the subject of a migration's events.
func MigrationStream(id string) (string, error) { return stream(MigrationSubject, id) }

// ClusterStream is the subject of a cluster's events.
func ClusterStream(id string) (string, error) { return stream(ClusterSubject, id) }

func stream(prefix, id string) (string, error) {
	if !ValidID(id) {
		return "", fmt.Errorf("%w: %q is not an identifier zdm issued", ErrNotFound, id)
	}
	return prefix + id, nil
}

// ValidID reports whether id can be an aggregate identifier: letters,
// digits, '-' and '_', so it never addresses another subject.
func ValidID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if !(r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')) {
			return false
		}
	}
	return true
}
