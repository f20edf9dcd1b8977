package capture

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/retry"
)

// Method kinds as the capture sees them.
var (
	writeMethods = map[string]string{"Insert": OpInsert, "Upsert": OpUpsert, "Delete": OpDelete}
	// Allowed DDL is journaled and replayed on the target.
	ddlMethods = map[string]bool{"CreateDatabase": true, "DropDatabase": true, "CreateCollection": true, "DropCollection": true,
		"CreatePartition": true, "DropPartition": true, "CreateIndex": true, "DropIndex": true,
		"LoadCollection": true, "ReleaseCollection": true, "LoadPartitions": true, "ReleasePartitions": true}
	// accessMethods are DDL too, of who may sign in and what they may do:
	// journaled and replayed like the rest, they touch no collection's
	// schema. Through the proxy is the only way zdm learns a password.
	accessMethods = map[string]bool{"CreateCredential": true, "UpdateCredential": true, "DeleteCredential": true,
		"CreateRole": true, "DropRole": true, "OperateUserRole": true, "OperatePrivilege": true}
	// Forbidden while a migration runs: R3's, Import (R5), and what
	// changes a source in a way the journal cannot carry to the target
	// (an index's properties, a schema's new field or function, a
	// truncation, the newer access control, a restore, replication into
	// the source). Most are newer than the proto this proxy is built
	// with; newerAnswers says how each of those answers.
	forbiddenMethods = map[string]bool{"AlterCollection": true, "AlterCollectionField": true, "CreateAlias": true, "DropAlias": true,
		"AlterAlias": true, "RenameCollection": true, "AlterDatabase": true, "Import": true,
		"AlterIndex": true, "RestoreRBAC": true, "ReplicateMessage": true,
		"AddCollectionField": true, "AddCollectionStructField": true, "AlterCollectionSchema": true, "AddCollectionFunction": true,
		"AlterCollectionFunction": true, "DropCollectionFunction": true, "TruncateCollection": true, "CreateNamespace": true,
		"DropNamespace": true, "RestoreSnapshot": true, "RestoreExternalSnapshot": true, "RefreshExternalCollection": true,
		"BatchUpdateManifest": true, "AlterRole": true, "OperatePrivilegeV2": true, "CreatePrivilegeGroup": true,
		"DropPrivilegeGroup": true, "OperatePrivilegeGroup": true, "AddUserTags": true, "DeleteUserTags": true,
		"CreateRowPolicy": true, "DropRowPolicy": true, "UpdateRowPolicy": true, "SetRLSPrincipalTags": true,
		"DeleteRLSPrincipalTags": true, "AddFileResource": true, "RemoveFileResource": true, "CreateReplicateStream": true,
		"UpdateReplicateConfiguration": true}
	// passingNewer are methods newer than this proxy's proto that change
	// nothing a migration carries: reads, and the source's own snapshots
	// and cache warming. Every method the proto knows and no list above
	// names is of that kind too (reads, flushes, compactions, resource
	// groups, which are each cluster's own).
	passingNewer = map[string]bool{"BatchDescribeCollection": true, "Prewarm": true, "DescribePrewarmTask": true,
		"DescribeNamespace": true, "ListNamespaces": true, "HasNamespace": true, "GetNamespaceStats": true,
		"ListPrivilegeGroups": true, "RunAnalyzer": true, "ListFileResources": true, "GetUserTags": true,
		"ListUsersWithTag": true, "ListRowPolicies": true, "GetRLSPrincipalTags": true, "ListRLSPrincipals": true,
		"GetReplicateConfiguration": true, "GetReplicateInfo": true, "DumpMessages": true, "ComputePhraseMatchSlop": true,
		"CreateSnapshot": true, "DropSnapshot": true, "ListSnapshots": true, "DescribeSnapshot": true, "ExportSnapshot": true,
		"GetExportSnapshotState": true, "GetRestoreSnapshotState": true, "ListRestoreSnapshotJobs": true,
		"PinSnapshotData": true, "UnpinSnapshotData": true, "GetRefreshExternalCollectionProgress": true,
		"ListRefreshExternalCollectionJobs": true}
	// newerAnswers says, for the forbidden methods newer than this
	// proxy's proto, whether the answer carries its status as field 1
	// (true) or is a bare status (false): a refusal is shaped like it.
	newerAnswers = map[string]bool{"TruncateCollection": true, "CreateNamespace": true, "DropNamespace": true,
		"RestoreSnapshot": true, "RestoreExternalSnapshot": true, "AlterCollectionSchema": true, "RefreshExternalCollection": true,
		"AddCollectionField": false, "AddCollectionStructField": false, "AddCollectionFunction": false,
		"AlterCollectionFunction": false, "DropCollectionFunction": false, "AlterCollectionField": false,
		"BatchUpdateManifest": false, "AlterRole": false, "OperatePrivilegeV2": false, "CreatePrivilegeGroup": false,
		"DropPrivilegeGroup": false, "OperatePrivilegeGroup": false, "AddUserTags": false, "DeleteUserTags": false,
		"CreateRowPolicy": false, "DropRowPolicy": false, "UpdateRowPolicy": false, "SetRLSPrincipalTags": false,
		"DeleteRLSPrincipalTags": false, "AddFileResource": false, "RemoveFileResource": false,
		"UpdateReplicateConfiguration": false}
)

// namesNewOrDropped are the collection DDL that name no existing
// collection, or cannot name one through an alias.
var namesNewOrDropped = map[string]bool{"CreateCollection": true, "DropCollection": true}

// Failer fails a migration with a reason.
type Failer interface {
	FailMigration(ctx context.Context, migrationID, reason, detail string) error
}

// Bucket keeps keys that outlive a zdmd (see KeepGivenKeys).
type Bucket interface {
	Put(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
	// Matching returns the keys a NATS subject filter matches, with their
	// values.
	Matching(ctx context.Context, filter string) (map[string][]byte, error)
}

// Capture journals the writes a source acknowledges through its proxy
// while a migration of it runs, enforces the lock, holds writes for the
// switch and routes a migrated source's traffic to its target.
type Capture struct {
	journal JournalLog
	// journalRetry paces the tries of a journal entry.
	journalRetry retry.Policy
	failer       Failer
	logger       *slog.Logger
	// linger is how long an outcome waits for a write to ride with
	// (outcomeLinger).
	linger time.Duration
	kept   Bucket
	sealer Sealer // of passwords in journal entries (see SealPasswords)
	boot   string // this process's mark on its writes' tokens
	// term ends when this capture stops speaking for the migrations (see
	// ServeTerm).
	term context.Context
	// until is when the term's lease lapses by this process's clock (see
	// ServeTerm).
	until func() time.Time
	// entries recycles the buffers journal entries are encoded in: one of
	// a batch's size per write was a third of what the proxy allocated.
	entries sync.Pool

	// writes numbers this process's writes (their tokens).
	writes atomic.Uint64
	// resolving counts the outcomes being journaled (see resolve).
	resolving sync.WaitGroup
	// carried, alone and aloneEntries count outcomes journaled (see
	// OutcomesJournaled).
	carried, alone, aloneEntries atomic.Uint64

	mu    sync.Mutex
	armed map[string]*armed // by source cluster
	// outcomes holds, by token, the outcomes being journaled (Outcome).
	outcomes map[string]Resolved
	// outboxes hold, by subject, the outcomes waiting for an entry.
	outboxes map[string]*outbox
	routes   map[string]string    // source cluster -> target endpoint after a switch
	ddl      map[string][]ddlMark // by migration: allowed DDL journaled lately
	// unfailed holds, by migration, the failure of a write the journal
	// lost that the event store could not record either (NATS down): the
	// migration must not switch, and the failure is retried.
	unfailed map[string]string

	// order keeps writes that may touch a common key from being in flight
	// at once (see order.go); known caches what writes' collections are.
	order *keyOrder
	known map[collectionRef]knownCollection
	// methods are MilvusService's methods this proxy knows what to do
	// with (see knownMethod), built once: every call is looked up in it.
	methods map[string]bool
	lookups singleflight.Group // one look-up of a collection at a time
	// sweepAt is the size of known past which its stale failed look-ups
	// are dropped (see lookup).
	sweepAt int
	// givenKeys is, by journal subject, the largest key the source gave
	// an insert that went through this capture (see Entry.AfterKey).
	givenKeys map[string]int64
	// givenKept is what the bucket holds of givenKeys, givenRead the
	// subjects whose kept key was read (see givenkeys.go).
	givenKept   map[string]int64
	givenRead   map[string]bool
	givenKeptAt time.Time
}

// collectionRef names a collection of a cluster, or an alias of one.
type collectionRef struct{ cluster, db, coll string }

// knownCollection is what a collection name stands for, as last looked
// up: the collection's own name (an alias stands for another) and its
// primary key field; both "" after a failed look-up, tried again once
// stale.
type knownCollection struct {
	name, pk string
	at       time.Time
}

// lookupRetry is how long a failed look-up stands: the collection's writes
// meanwhile claim the whole collection.
const lookupRetry = 30 * time.Second

// minSweep is the least size of known at which stale failed look-ups are
// dropped: names that exist nowhere (a client's typos, a fuzzer's
// guesses) would otherwise each stay for the life of the process.
const minSweep = 1024

// CollectionLookup looks up, on the cluster a proxy fronts, the name of
// the collection a name stands for (an alias's collection) and its primary
// key field.
type CollectionLookup func(ctx context.Context, db, name string) (coll, pk string, err error)

type armed struct {
	migrationID string
	policy      string
	// keepAutoID: the migration keeps the keys the source assigns, so a
	// collection with autoID keys may be made while it runs.
	keepAutoID bool
	hold       *gate // open when writes may go on
	inflight   sync.WaitGroup
}

// gate is a channel closed once, by whichever of release or disarm comes
// first.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate(open bool) *gate {
	g := &gate{ch: make(chan struct{})}
	if open {
		g.open()
	}
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// NewCapture returns a capture journaling to j.
func NewCapture(j JournalLog, f Failer, logger *slog.Logger) *Capture {
	if logger == nil {
		logger = slog.Default()
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &Capture{journal: j, failer: f, logger: logger, armed: map[string]*armed{}, routes: map[string]string{}, outcomes: map[string]Resolved{}, outboxes: map[string]*outbox{},
		ddl:  map[string][]ddlMark{},
		boot: hex.EncodeToString(b[:]), unfailed: map[string]string{},
		order: newKeyOrder(), known: map[collectionRef]knownCollection{}, methods: knownMethods(), givenKeys: map[string]int64{}, givenKept: map[string]int64{}, givenRead: map[string]bool{}, journalRetry: DefaultJournalRetry(), term: context.Background(),
		linger: outcomeLinger}
}

// ServeTerm ties the capture to one lease term of its zdmd; call it before
// the capture serves. Once ctx ends, another zdmd may drive the migrations:
// a write's journal entry is no longer tried (one landing after the next
// term read the journal would be replayed after writes that came later),
// and no migration is failed for it. The next term's applier repairs the
// write from the source.
//
// until, if not nil, says until when this process's clock holds the
// lease. A process frozen past it (stopped, a paused VM) wakes with ctx
// not yet ended, since whatever ends it has not run yet, while another
// zdmd already drives: a write it then sent would reach the source after
// the next term's writes of the same keys, and after the repair that
// settled it. Past until, nothing more is journaled or sent.
func (c *Capture) ServeTerm(ctx context.Context, until func() time.Time) {
	c.term, c.until = ctx, until
}

// inTerm says whether this capture still speaks for the migrations.
func (c *Capture) inTerm() bool {
	return c.term.Err() == nil && (c.until == nil || time.Now().Before(c.until()))
}

// DefaultJournalRetry tries a journal entry 8 times, 50 ms apart at first,
// doubling: about 13 s in all while the client waits.
func DefaultJournalRetry() retry.Policy {
	return retry.Policy{Attempts: 40, First: 50 * time.Millisecond, Max: 500 * time.Millisecond}
}

// journalTry bounds one try of a journal entry (see Capture.tries);
// entryPatience bounds the tries of a write's entry before it is
// forwarded: refused then, the write did nothing, and the client may try
// it again.
const (
	journalTry    = time.Second
	entryPatience = 10 * time.Second
)

// RetryJournal sets how a journal entry is tried again while its client
// waits (default DefaultJournalRetry).
func (c *Capture) RetryJournal(p retry.Policy) { c.journalRetry = p.Or(DefaultJournalRetry()) }

// KeepGivenKeys gives the capture the bucket where it keeps the last key
// the source gave each collection's inserts, which outlives its process
// (givenkeys.go).
func (c *Capture) KeepGivenKeys(b Bucket) { c.kept = b }

// Arm starts capturing a source's writes for a migration, under its
// options' rules for forbidden operations and autoID keys. Arming again
// changes nothing.
func (c *Capture) Arm(clusterID, migrationID string, o domain.Options) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.armed[clusterID]; ok && a.migrationID == migrationID {
		return
	}
	c.armed[clusterID] = &armed{migrationID: migrationID, policy: o.OnForbiddenOp,
		keepAutoID: o.AutoID == domain.AutoIDPreserveKeys, hold: newGate(true)}
	// What an earlier migration learnt of the cluster's collections may
	// have changed since, around the proxy.
	maps.DeleteFunc(c.known, func(ref collectionRef, _ knownCollection) bool { return ref.cluster == clusterID })
}

// Disarm stops capturing for a migration.
func (c *Capture) Disarm(migrationID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, a := range c.armed {
		if a.migrationID == migrationID {
			a.hold.open()
			delete(c.armed, id)
		}
	}
	delete(c.unfailed, migrationID)
	// Its outboxes go; what one still holds is flushed all the same.
	for subject := range c.outboxes {
		if strings.HasPrefix(subject, JournalPrefix(migrationID)) {
			delete(c.outboxes, subject)
		}
	}
}

// Route sends a source's traffic to endpoint ("" back to the source).
func (c *Capture) Route(clusterID, endpoint string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if endpoint == "" {
		delete(c.routes, clusterID)
		return
	}
	c.routes[clusterID] = endpoint
}

// RouteOf is where a source's traffic goes ("" for the source itself).
func (c *Capture) RouteOf(clusterID string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.routes[clusterID]
}

// Hold makes new writes to a source wait and returns once the writes in
// flight are answered (and journaled); release lets the held ones go on.
func (c *Capture) Hold(ctx context.Context, clusterID string) (release func(), err error) {
	c.mu.Lock()
	a, ok := c.armed[clusterID]
	if !ok {
		c.mu.Unlock()
		return func() {}, fmt.Errorf("capture of cluster %s is not armed", clusterID)
	}
	if detail, lost := c.unfailed[a.migrationID]; lost {
		c.mu.Unlock()
		return func() {}, &domain.StepError{Reason: "journal_unavailable", Permanent: true, Err: errors.New(detail)}
	}
	held := newGate(false)
	a.hold = held
	c.mu.Unlock()
	c.flushOutboxes()
	done := make(chan struct{})
	go func() { a.inflight.Wait(); close(done) }()
	release = held.open
	select {
	case <-done:
		return release, nil
	case <-ctx.Done():
		release()
		return func() {}, ctx.Err()
	}
}

// ddlMark is allowed DDL on a database (coll "") or a collection.
type ddlMark struct {
	db, coll string
	at       time.Time
}

// ddlKept is how long DDL marks are kept: longer than any fingerprint
// interval.
const ddlKept = 10 * time.Minute

// DDLSince reports, by fingerprint key, what allowed DDL journaled for a
// migration since t touched: "database DB" for a database, "collection
// DB/COLL" for a collection. A change of the source there is expected; any
// other was made around the proxy.
func (c *Capture) DDLSince(migrationID string, t time.Time) func(key string) bool {
	c.mu.Lock()
	var marks []ddlMark
	for _, d := range c.ddl[migrationID] {
		if d.at.After(t) {
			marks = append(marks, d)
		}
	}
	c.mu.Unlock()
	return func(key string) bool {
		for _, d := range marks {
			if d.coll == "" && (key == "database "+d.db || strings.HasPrefix(key, "collection "+d.db+"/")) ||
				key == "collection "+d.db+"/"+d.coll {
				return true
			}
		}
		return false
	}
}

// KeyWaits reports how many writes waited, since the process started,
// for a write in flight that may touch the same keys (or for DDL or a
// delete by expression on their collection), and for how long in all.
func (c *Capture) KeyWaits() (writes uint64, waited time.Duration) {
	return c.order.waits.Load(), time.Duration(c.order.waited.Load())
}
