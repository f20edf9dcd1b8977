package capture

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// JournalLog is where captured writes are kept, in order, per subject.
type JournalLog interface {
	// Append stores an entry; one with an id is stored once however often
	// it is appended (a try whose answer was lost is tried again).
	Append(ctx context.Context, subject string, data []byte, id string) (uint64, error)
	Subjects(ctx context.Context, filter string) (map[string]uint64, error)
	LastSeq(ctx context.Context, filter string) (uint64, error)
	Next(ctx context.Context, subject string, seq uint64) (uint64, []byte, bool, error)
	Follow(ctx context.Context, subject string, from uint64, fn func(seq uint64, data []byte, pending uint64) error) error
	Purge(ctx context.Context, filter string) error
}

// Entry is one captured write: the request as the client sent it, the
// database it was resolved to, and what the source answered.
type Entry struct {
	Op         string       `json:"op"`
	Method     string       `json:"method"`
	Database   string       `json:"db"`
	Collection string       `json:"collection,omitempty"`
	Request    []byte       `json:"-"`
	IDs        *milvus.Keys `json:"ids,omitempty"`
	Timestamp  uint64       `json:"ts,omitempty"`
	At         time.Time    `json:"at"`
	// Intent is the token of a write journaled first (see outcome.go):
	// its outcome entry names it too.
	Intent string `json:"intent,omitempty"`
	// AfterKey, in an insert, is the largest key the source had given an
	// insert of the collection before it, as far as this zdmd saw (0:
	// none): Milvus gives keys in increasing order, so the rows of an
	// insert without keys whose outcome is unknown have larger ones.
	AfterKey int64 `json:"after_key,omitempty"`
	// Pending marks a write journaled before it was forwarded: its
	// outcome follows in an OpOutcome entry naming its Intent.
	Pending bool `json:"pending,omitempty"`
	// Outcome, in an OpOutcome entry of one write, is what became of it.
	Outcome string `json:"outcome,omitempty"`
	// Outcomes are those of earlier writes journaled first on the same
	// subject (Resolved, encoded): they ride with a later write's entry,
	// or together in an OpOutcome entry (see outbox.go).
	Outcomes []json.RawMessage `json:"outcomes,omitempty"`
}

// Resolved is what became of a write journaled first.
type Resolved struct {
	Intent  string `json:"intent"`
	Outcome string `json:"outcome"`
	// Timestamp and IDs are what the source answered a write it applied.
	Timestamp uint64       `json:"ts,omitempty"`
	IDs       *milvus.Keys `json:"ids,omitempty"`
}

// Resolutions are the outcomes an entry carries: its Outcomes, or itself
// when it is the OpOutcome entry of one write.
func (e Entry) Resolutions() []Resolved {
	if e.Op == OpOutcome && e.Intent != "" && len(e.Outcomes) == 0 {
		return []Resolved{{Intent: e.Intent, Outcome: e.Outcome, Timestamp: e.Timestamp, IDs: e.IDs}}
	}
	out := make([]Resolved, 0, len(e.Outcomes))
	for _, raw := range e.Outcomes {
		var r Resolved
		if json.Unmarshal(raw, &r) == nil && r.Intent != "" {
			out = append(out, r)
		}
	}
	return out
}

// Marshal writes the entry as a JSON header, a newline and the request's
// raw bytes: a batch of vectors is stored as it came, not re-encoded.
func (e Entry) Marshal() []byte { return e.AppendTo(make([]byte, 0, len(e.Request)+512)) }

// AppendTo appends what Marshal returns to b.
func (e Entry) AppendTo(b []byte) []byte {
	head, _ := json.Marshal(e)
	b = append(b, head...)
	b = append(b, '\n')
	return append(b, e.Request...)
}

// UnmarshalEntry reads what Marshal wrote.
func UnmarshalEntry(data []byte) (Entry, error) {
	var e Entry
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		return e, errors.New("journal entry without a header")
	}
	if err := json.Unmarshal(data[:i], &e); err != nil {
		return e, err
	}
	e.Request = data[i+1:]
	return e, nil
}

// Journal operations.
const (
	OpInsert    = "insert"
	OpUpsert    = "upsert"
	OpDelete    = "delete"
	OpDDL       = "ddl"
	OpHeartbeat = "heartbeat"
	// OpUncertain is a write forwarded to the source whose outcome zdm
	// never saw (zdmd died, or the call broke off). The applier copies the
	// source's current state of the keys it touched.
	OpUncertain = "uncertain"
	// OpOutcome carries the outcomes of Pending writes (see outcome.go).
	OpOutcome = "outcome"
)

// CommitTime is when the source committed the write: its hybrid timestamp
// (physical milliseconds in the high bits), or the proxy's clock at the
// answer when the source gave none (Milvus 2.3 deletes).
func (e Entry) CommitTime() time.Time {
	if e.Timestamp > 0 {
		return time.UnixMilli(int64(e.Timestamp >> 18))
	}
	return e.At
}

// JournalPrefix is the subject prefix of one migration's journal.
func JournalPrefix(migrationID string) string { return "zdm.journal." + migrationID + "." }

var plainName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// token turns a Milvus name into a subject token that reads back.
func token(kind, name string) string {
	if plainName.MatchString(name) {
		return kind + "_" + name
	}
	return kind + "x" + hex.EncodeToString([]byte(name))
}

func untoken(tok string) string {
	if len(tok) < 2 {
		return ""
	}
	if tok[1] == 'x' {
		b, _ := hex.DecodeString(tok[2:])
		return string(b)
	}
	return tok[2:]
}

// CollectionSubject is where a collection's writes and DDL go.
func CollectionSubject(migrationID, db, coll string) string {
	return JournalPrefix(migrationID) + token("d", db) + "." + token("c", coll)
}

// DatabaseSubject is where database DDL goes.
func DatabaseSubject(migrationID, db string) string {
	return JournalPrefix(migrationID) + token("d", db) + ".db"
}

// HeartbeatSubject carries the capture's heartbeat.
func HeartbeatSubject(migrationID string) string { return JournalPrefix(migrationID) + "hb.hb" }

// SubjectNames reads the database and collection back from a subject
// ("" collection for database DDL and heartbeats).
func SubjectNames(migrationID, subject string) (db, coll string, kind string) {
	rest := strings.TrimPrefix(subject, JournalPrefix(migrationID))
	a, b, _ := strings.Cut(rest, ".")
	switch {
	case a == "hb":
		return "", "", "heartbeat"
	case b == "db":
		return untoken(a), "", "database"
	}
	return untoken(a), untoken(b), "collection"
}

// appendEntry journals e, retrying for a while: the client waits for it.
// The write reached the source: its entry is journaled even if the
// client hangs up, within the tries of the journal's retry policy and
// the capture's term.
func (c *Capture) appendEntry(ctx context.Context, subject string, e Entry) error {
	return c.appendTried(c.term, c.term, subject, e, e.Intent, nil)
}

// journalRate is the pace a try of a large entry is given: its messages
// of up to 32 MB are each written to disk, on three replicas in HA,
// before they are acknowledged, which takes a busy host seconds (a 41 MB
// write's tries of a second each all ran out in CI).
const journalRate = 8 << 20 // bytes a second

// tryFor bounds one try of an entry of n bytes.
func tryFor(n int) time.Duration { return journalTry + time.Duration(n)*time.Second/journalRate }

// tries runs fn, which journals n bytes, under the journal's retry policy
// while loop lasts, each try under try and bounded by tryFor(n): a stream
// whose leader was lost answers nothing until its peers elect another,
// seconds later, and a try sent meanwhile waits out its whole timeout, so
// short tries go on soon after the election.
func (c *Capture) tries(loop, try context.Context, n int, fn func(context.Context) error) error {
	return c.journalRetry.Do(loop, func(int) error {
		tctx, cancel := context.WithTimeout(try, tryFor(n))
		defer cancel()
		return fn(tctx)
	})
}

// Heartbeat journals a heartbeat for every armed migration, and records
// the failures the event store could not take before.
func (c *Capture) Heartbeat(ctx context.Context) {
	c.failLost(ctx)
	c.mu.Lock()
	ids := make([]string, 0, len(c.armed))
	for _, a := range c.armed {
		ids = append(ids, a.migrationID)
	}
	c.mu.Unlock()
	for _, id := range ids {
		if _, err := c.journal.Append(ctx, HeartbeatSubject(id), Entry{Op: OpHeartbeat, At: time.Now()}.Marshal(), ""); err != nil {
			c.logger.Warn("heartbeat not journaled", "migration", id, "err", err)
		}
	}
	c.keepGivenKeys(ctx)
}
