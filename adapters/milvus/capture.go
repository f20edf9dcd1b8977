package milvus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/retry"
)

// Method kinds as the capture sees them.
var (
	writeMethods = map[string]string{"Insert": OpInsert, "Upsert": OpUpsert, "Delete": OpDelete}
	// Allowed DDL is journaled and replayed on the target.
	ddlMethods = map[string]bool{"CreateDatabase": true, "DropDatabase": true, "CreateCollection": true, "DropCollection": true,
		"CreatePartition": true, "DropPartition": true, "CreateIndex": true, "DropIndex": true,
		"LoadCollection": true, "ReleaseCollection": true}
	// Forbidden while a migration runs (R3), and Import (R5).
	forbiddenMethods = map[string]bool{"AlterCollection": true, "AlterCollectionField": true, "CreateAlias": true, "DropAlias": true,
		"AlterAlias": true, "RenameCollection": true, "AlterDatabase": true, "Import": true}
)

// namesNewOrDropped are the collection DDL that name no existing
// collection, or cannot name one through an alias.
var namesNewOrDropped = map[string]bool{"CreateCollection": true, "DropCollection": true}

// Failer fails a migration with a reason.
type Failer interface {
	FailMigration(ctx context.Context, migrationID, reason, detail string) error
}

// Intents keeps the writes forwarded to the source and not yet journaled,
// so that those a crash leaves without an outcome can be repaired.
type Intents interface {
	Put(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
	All(ctx context.Context) (map[string][]byte, error)
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
	intents      Intents
	boot         string // this process's mark on its intents
	// entries recycles the buffers journal entries are encoded in: one of
	// a batch's size per write was a third of what the proxy allocated.
	entries sync.Pool

	// writes numbers this process's intents; journaled is the highest
	// journal sequence it has seen, a lower bound of the entry of any
	// intent recorded from now on.
	writes    atomic.Uint64
	journaled atomic.Uint64

	mu        sync.Mutex
	recovered map[string]bool
	// Intents live in slots (see intents.go), so the bucket holds as many
	// keys as writes were ever in flight at once, not one per write.
	slots  map[string]*slotPool // by migration
	armed  map[string]*armed    // by source cluster
	routes map[string]string    // source cluster -> target endpoint after a switch
	ddl    map[string][]ddlMark // by migration: allowed DDL journaled lately
	// unfailed holds, by migration, the failure of a write the journal
	// lost that the event store could not record either (NATS down): the
	// migration must not switch, and the failure is retried.
	unfailed map[string]string

	// order keeps writes that may touch a common key from being in flight
	// at once (see order.go); known caches what writes' collections are.
	order   *keyOrder
	known   map[collectionRef]knownCollection
	lookups singleflight.Group // one look-up of a collection at a time
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

// CollectionLookup looks up, on the cluster a proxy fronts, the name of
// the collection a name stands for (an alias's collection) and its primary
// key field.
type CollectionLookup func(ctx context.Context, db, name string) (coll, pk string, err error)

type armed struct {
	migrationID string
	policy      string
	hold        *gate // open when writes may go on
	inflight    sync.WaitGroup
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
	return &Capture{journal: j, failer: f, logger: logger, armed: map[string]*armed{}, routes: map[string]string{}, ddl: map[string][]ddlMark{},
		boot: hex.EncodeToString(b[:]), recovered: map[string]bool{}, slots: map[string]*slotPool{}, unfailed: map[string]string{},
		order: newKeyOrder(), known: map[collectionRef]knownCollection{}, journalRetry: DefaultJournalRetry()}
}

// DefaultJournalRetry tries a journal entry 8 times, 50 ms apart at first,
// doubling: about 13 s in all while the client waits.
func DefaultJournalRetry() retry.Policy {
	return retry.Policy{Attempts: 8, First: 50 * time.Millisecond}
}

// RetryJournal sets how a journal entry is tried again while its client
// waits (default DefaultJournalRetry).
func (c *Capture) RetryJournal(p retry.Policy) { c.journalRetry = p.Or(DefaultJournalRetry()) }

// KeepIntents records every write before it is forwarded, so that one a
// crash leaves without an outcome is repaired (see Recover).
func (c *Capture) KeepIntents(i Intents) { c.intents = i }

// Recover turns the intents a previous zdmd left for a migration into
// uncertain entries of its journal, once per process. The applier then
// copies the source's state of the keys they touched: a write the source
// applied but zdm never journaled still reaches the target.
func (c *Capture) Recover(ctx context.Context, migrationID string) error {
	if c.intents == nil {
		return nil
	}
	c.mu.Lock()
	done := c.recovered[migrationID]
	c.mu.Unlock()
	if done {
		return nil
	}
	// Intents recorded from now on are settled after the journal as it is.
	last, err := c.journal.LastSeq(ctx, JournalPrefix(migrationID)+">")
	if err != nil {
		return err
	}
	c.sawSeq(last) // every leftover intent's entry, if any, is at or before last
	mine, err := c.intentsOf(ctx, migrationID)
	if err != nil {
		return err
	}
	left := map[string]Entry{}
	named := map[string]bool{}
	after := uint64(math.MaxUint64)
	for key, value := range mine {
		if strings.HasPrefix(key, migrationID+"."+c.boot+".") {
			continue // this process's own writes
		}
		if len(value) == 0 { // an empty slot holds no write
			if err := c.intents.Delete(ctx, key); err != nil {
				return err
			}
			continue
		}
		e, err := UnmarshalEntry(value)
		if err != nil {
			return fmt.Errorf("write intent %s: %w", key, err)
		}
		left[key] = e
		if e.Intent != "" {
			named[e.Intent] = true
			after = min(after, e.After)
		}
	}
	var settled map[string]bool
	if len(named) > 0 {
		if settled, err = c.settledIntents(ctx, migrationID, after, last, named); err != nil {
			return err
		}
	}
	for key, e := range left {
		if !settled[e.Intent] {
			if err := c.appendUncertain(ctx, migrationID, e); err != nil {
				return err
			}
			c.logger.Warn("a write without a known outcome will be repaired from the source", "migration", migrationID,
				"method", e.Method, "collection", e.Database+"/"+e.Collection)
		}
		if err := c.intents.Delete(ctx, key); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.recovered[migrationID] = true
	c.mu.Unlock()
	return nil
}

// DropIntents forgets the intents of an ended migration.
func (c *Capture) DropIntents(ctx context.Context, migrationID string) error {
	if c.intents == nil {
		return nil
	}
	mine, err := c.intentsOf(ctx, migrationID)
	if err != nil {
		return err
	}
	for key := range mine {
		if err := c.intents.Delete(ctx, key); err != nil {
			return err
		}
	}
	c.mu.Lock()
	delete(c.slots, migrationID)
	c.mu.Unlock()
	return nil
}

// intentsOf returns a migration's intents, by key.
func (c *Capture) intentsOf(ctx context.Context, migrationID string) (map[string][]byte, error) {
	all, err := c.intents.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read write intents: %w", err)
	}
	for key := range all {
		if !strings.HasPrefix(key, migrationID+".") {
			delete(all, key)
		}
	}
	return all, nil
}

func (c *Capture) appendUncertain(ctx context.Context, migrationID string, e Entry) error {
	e.Op, e.At = OpUncertain, time.Now()
	if err := c.appendEntry(ctx, CollectionSubject(migrationID, e.Database, e.Collection), e); err != nil {
		return fmt.Errorf("journal an uncertain write: %w", err)
	}
	return nil
}

// Arm starts capturing a source's writes for a migration. Arming again
// changes nothing.
func (c *Capture) Arm(clusterID, migrationID, policy string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.armed[clusterID]; ok && a.migrationID == migrationID {
		return
	}
	c.armed[clusterID] = &armed{migrationID: migrationID, policy: policy, hold: newGate(true)}
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

// call is one intercepted request.
type call struct {
	cluster string
	a       *armed
	kind    string // "write", "ddl", "forbidden", ""
	op      string
	method  string
	db      string
	coll    string
	intent  string // key of its intent, if kept
	slot    int
	token   string // names the intent in the write's journal entry
	subject string // its journal subject, once its collection is resolved
	claim   *keyClaim
	// keys is the request without its columns that cannot be keys: what
	// an intent or an uncertain entry needs to repair the write, small
	// enough for the journal whatever the vectors' size.
	keys []byte
}

// before runs ahead of forwarding: it refuses a forbidden operation under
// policy reject, waits while writes are held, counts the write in flight
// and waits until no write that may touch its keys is. lookup resolves
// writes' collections (nil: every write claims its whole collection, and
// aliases are journaled as named). after, broken or unsent must follow.
func (c *Capture) before(ctx context.Context, clusterID, fullMethod string, req []byte, dbHeader string, lookup CollectionLookup) (*call, error) {
	method := fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
	k := &call{method: method, cluster: clusterID}
	switch {
	case writeMethods[method] != "":
		k.kind, k.op = "write", writeMethods[method]
	case ddlMethods[method]:
		k.kind, k.op = "ddl", OpDDL
	case forbiddenMethods[method]:
		k.kind = "forbidden"
	default:
		return k, nil
	}
	c.mu.Lock()
	a := c.armed[clusterID]
	c.mu.Unlock()
	if a == nil {
		k.kind = ""
		return k, nil
	}
	k.a = a
	msg, keys := decodeRequest(method, req)
	k.keys = keys
	k.db, k.coll = requestNames(method, msg, dbHeader)
	if k.kind == "forbidden" && a.policy != domain.PolicyFail {
		return nil, &Refusal{Reason: fmt.Sprintf(
			"zdm: %s is forbidden while migration %s of this cluster runs (R3); retry after the migration, or cancel it", method, a.migrationID)}
	}
	if err := c.fits(k, msg, req); err != nil {
		return nil, err
	}
	for {
		c.mu.Lock()
		hold := a.hold
		c.mu.Unlock()
		select {
		case <-hold.ch:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		c.mu.Lock()
		captured, same := c.armed[clusterID] == a, a.hold == hold
		if captured && same {
			// Counted in flight under the lock: a hold that begins later
			// waits for this write.
			a.inflight.Add(1)
		}
		c.mu.Unlock()
		if !captured {
			// Held until the switch (or the end of the migration) disarmed
			// the capture: the write goes where the route now says and is
			// not journaled, or the applier would write it to the target a
			// second time, after the client's next writes.
			return &call{method: method}, nil
		}
		if same {
			break
		}
	}
	if k.kind != "forbidden" {
		var pk string
		if lookup != nil && (k.kind == "write" || k.kind == "ddl" && k.coll != "" && !namesNewOrDropped[method]) {
			// Journaled under the collection's own name: a write or DDL
			// through an alias is applied, ordered and copied with the
			// collection's.
			known := c.lookup(ctx, collectionRef{clusterID, k.db, k.coll}, lookup)
			if known.name != "" {
				k.coll, pk = known.name, known.pk
			}
		}
		k.subject = CollectionSubject(a.migrationID, k.db, k.coll)
		if k.coll == "" {
			k.subject = DatabaseSubject(a.migrationID, k.db)
		}
		k.claim = claimOf(k, msg, pk)
		if err := c.order.acquire(ctx, k.claim); err != nil {
			a.inflight.Done()
			return nil, status.FromContextError(err).Err()
		}
	}
	if k.kind == "write" && c.intents != nil {
		k.slot = c.takeSlot(a.migrationID)
		k.intent = c.intentKey(a.migrationID, k.slot)
		k.token = fmt.Sprintf("%s#%d", k.intent, c.writes.Add(1))
		// Only the key columns: the intent is written before every write,
		// and its vectors are not needed to repair it.
		e := k.entry(keys)
		e.After = c.journaled.Load()
		if err := c.intents.Put(context.WithoutCancel(ctx), k.intent, e.Marshal()); err != nil {
			// The put may have landed: the sweep clears the slot.
			c.giveSlot(a.migrationID, k.slot, true)
			c.order.release(k.claim)
			a.inflight.Done()
			// Not forwarded: nothing happened, and the client may retry.
			return nil, status.Errorf(codes.Unavailable, "zdm: the write could not be recorded before forwarding (%v); it was not sent, retry it", err)
		}
	}
	return k, nil
}

// entryOverhead bounds what a journal entry adds to its request: its
// header, and the keys the source gives an insert (up to 21 bytes each).
func entryOverhead(msg proto.Message) int64 {
	n := int64(1024)
	if r, ok := msg.(*milvuspb.InsertRequest); ok {
		n += 21 * int64(r.GetNumRows())
	}
	return n
}

// fits refuses, before it reaches the source, a write whose journal entry
// would be larger than the journal takes: its answer could only be a
// failure after the source applied it.
func (c *Capture) fits(k *call, msg proto.Message, req []byte) error {
	limited, ok := c.journal.(interface{ MaxEntry() int64 })
	if !ok || k.kind == "forbidden" {
		return nil
	}
	size, limit := int64(len(req))+entryOverhead(msg), limited.MaxEntry()
	if size <= limit {
		return nil
	}
	return &Refusal{Reason: fmt.Sprintf("zdm: this %s is %d bytes, more than a migration's journal takes (%d bytes, from NATS max_payload); "+
		"nothing was written: send it in smaller batches, or raise max_payload in nats.conf (at most 64MB) and restart zdmd and NATS",
		k.method, len(req), limit)}
}

// claimOf is what a call claims: the keys of an insert, an upsert or a
// delete by key when the collection's key field pk is known, else the
// whole collection (or database, for its DDL). An insert without its key
// column (keys the source assigns) claims no key: it cannot touch a row
// written before.
func claimOf(k *call, msg proto.Message, pk string) *keyClaim {
	claim := &keyClaim{subject: k.subject, whole: true}
	if k.kind != "write" || pk == "" {
		return claim
	}
	var keys Keys
	switch r := msg.(type) {
	case interface{ GetFieldsData() []*schemapb.FieldData }:
		keys = KeysOf(Column(r.GetFieldsData(), pk))
	case *milvuspb.DeleteRequest:
		var ok bool
		if keys, ok = deleteKeys(r.GetExpr(), pk); !ok {
			return claim
		}
	default:
		return claim
	}
	claim.whole, claim.ints, claim.strs = false, keys.Ints, keys.Strs
	return claim
}

// lookup is what a collection name stands for, looked up once (name ""
// if the look-up failed lately). Writes that find it unknown at once
// share one look-up, which no caller's cancellation cuts short.
func (c *Capture) lookup(ctx context.Context, ref collectionRef, describe CollectionLookup) knownCollection {
	c.mu.Lock()
	known, ok := c.known[ref]
	c.mu.Unlock()
	if ok && (known.name != "" || time.Since(known.at) < lookupRetry) {
		return known
	}
	v, _, _ := c.lookups.Do(ref.cluster+"\x00"+ref.db+"\x00"+ref.coll, func() (any, error) {
		name, pk, err := describe(context.WithoutCancel(ctx), ref.db, ref.coll)
		if err != nil {
			c.logger.Warn("a collection written through the proxy could not be looked up: its writes wait for one another until it is",
				"collection", ref.db+"/"+ref.coll, "err", err)
			name, pk = "", ""
		}
		known := knownCollection{name: name, pk: pk, at: time.Now()}
		c.mu.Lock()
		c.known[ref] = known
		c.mu.Unlock()
		return known, nil
	})
	return v.(knownCollection)
}

// KeyWaits reports how many writes waited, since the process started,
// for a write in flight that may touch the same keys (or for DDL or a
// delete by expression on their collection), and for how long in all.
func (c *Capture) KeyWaits() (writes uint64, waited time.Duration) {
	return c.order.waits.Load(), time.Duration(c.order.waited.Load())
}

// forgetCollections drops what is known of a database's collections on
// a cluster, after DDL on it went through the proxy.
func (c *Capture) forgetCollections(cluster, db string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	maps.DeleteFunc(c.known, func(ref collectionRef, _ knownCollection) bool { return ref.cluster == cluster && ref.db == db })
}

// entry is the journal entry of the call with request req.
func (k *call) entry(req []byte) Entry {
	return Entry{Op: k.op, Method: k.method, Database: k.db, Collection: k.coll, Request: req, At: time.Now(), Intent: k.token}
}

// unsent ends a call that never reached the cluster.
func (c *Capture) unsent(ctx context.Context, k *call) {
	if k.a == nil {
		return
	}
	c.forget(ctx, k)
	c.order.release(k.claim)
	k.a.inflight.Done()
}

// broken ends a call that reached the cluster without an answer: the write
// may or may not have happened there, so it is journaled as uncertain,
// with its keys only (the repair reads the source's rows of those keys).
// If even that cannot be journaled, the migration fails: its target would
// miss a write the source may hold.
func (c *Capture) broken(ctx context.Context, k *call) {
	if k.a == nil {
		return
	}
	defer k.a.inflight.Done()
	defer c.order.release(k.claim)
	if k.kind != "write" {
		return
	}
	if err := c.appendUncertain(context.WithoutCancel(ctx), k.a.migrationID, k.entry(k.keys)); err != nil {
		c.journalLost(ctx, k, "a write broken off on its way to the source could not be journaled as uncertain", err)
		return
	}
	c.settle(k)
}

// journalLost fails the migration of a write the journal could not take
// after it reached the source: the last resort, the target would miss it.
func (c *Capture) journalLost(ctx context.Context, k *call, what string, err error) {
	c.logger.Error(what+"; the migration fails", "migration", k.a.migrationID, "err", err)
	if c.failer == nil {
		return
	}
	detail := what + ": " + err.Error()
	if ferr := c.failer.FailMigration(context.WithoutCancel(ctx), k.a.migrationID, "journal_unavailable", detail); ferr != nil {
		c.logger.Error("the migration could not be failed either; it will not switch, and its failure is recorded once the event store is back",
			"migration", k.a.migrationID, "err", ferr)
		c.mu.Lock()
		c.unfailed[k.a.migrationID] = detail
		c.mu.Unlock()
	}
}

// failLost records the failures journalLost could not, once the event
// store takes them.
func (c *Capture) failLost(ctx context.Context) {
	c.mu.Lock()
	todo := maps.Clone(c.unfailed)
	c.mu.Unlock()
	for id, detail := range todo {
		if err := c.failer.FailMigration(ctx, id, "journal_unavailable", detail); err != nil {
			c.logger.Warn("the failure of a migration that lost a write is still not recorded", "migration", id, "err", err)
			continue
		}
		c.mu.Lock()
		delete(c.unfailed, id)
		c.mu.Unlock()
	}
}

// forget clears the intent of a write known to have done nothing (never
// sent, or refused by the source), off the client's path: no journal
// entry settles it.
func (c *Capture) forget(ctx context.Context, k *call) {
	if k.intent == "" {
		return
	}
	migrationID, key, slot := k.a.migrationID, k.intent, k.slot
	go func() {
		// An empty value clears the slot.
		if err := c.intents.Put(context.WithoutCancel(ctx), key, nil); err != nil {
			c.logger.Warn("write intent not cleared (it will be repaired needlessly)", "key", key, "err", err)
			c.giveSlot(migrationID, slot, true)
			return
		}
		c.giveSlot(migrationID, slot, false)
	}()
}

// settle frees the slot of a write whose journal entry names its intent.
func (c *Capture) settle(k *call) {
	if k.intent != "" {
		c.giveSlot(k.a.migrationID, k.slot, true)
	}
}

// after journals an acknowledged write before the client gets its answer;
// under policy fail a forbidden operation fails the migration. An error
// means the write could not be journaled: the client must not be told it
// succeeded, and the migration fails.
func (c *Capture) after(ctx context.Context, k *call, req, resp []byte) error {
	if k.a == nil {
		return nil
	}
	defer k.a.inflight.Done()
	// Released once journaled: a write of the same keys waits for it.
	defer c.order.release(k.claim)
	if k.kind == "forbidden" {
		if ok, _ := succeeded(k.method, resp); ok && c.failer != nil {
			detail := fmt.Sprintf("%s on %s was let through the proxy (policy fail, R3)", k.method, strings.Trim(k.db+"/"+k.coll, "/"))
			if err := c.failer.FailMigration(context.WithoutCancel(ctx), k.a.migrationID, "forbidden_operation", detail); err != nil {
				c.logger.Error("fail migration after a forbidden operation", "migration", k.a.migrationID, "err", err)
			}
		}
		return nil
	}
	ok, res := succeeded(k.method, resp)
	if !ok {
		c.forget(ctx, k)
		return nil // only acknowledged writes are journaled
	}
	e := k.entry(req)
	if res != nil {
		e.Timestamp = res.GetTimestamp()
		if k.op == OpInsert || k.op == OpUpsert {
			ids := KeysOfIDs(res.GetIDs())
			e.IDs = &ids
		}
	}
	if err := c.appendEntry(ctx, k.subject, e); err != nil {
		c.journalLost(ctx, k, "a write acknowledged by the source could not be journaled", err)
		return &Refusal{Reason: fmt.Sprintf("zdm: the source applied this %s, but migration %s could not record it (%v); "+
			"the migration fails, and the write stays on the source only", k.method, k.a.migrationID, err)}
	}
	c.settle(k)
	if k.kind == "ddl" {
		c.forgetCollections(k.cluster, k.db)
		c.mu.Lock()
		now := time.Now()
		marks := c.ddl[k.a.migrationID]
		for len(marks) > 0 && now.Sub(marks[0].at) > ddlKept {
			marks = marks[1:]
		}
		c.ddl[k.a.migrationID] = append(marks, ddlMark{db: k.db, coll: k.coll, at: now})
		c.mu.Unlock()
	}
	return nil
}

// appendEntry journals e, retrying for a while: the client waits for it.
// It is encoded in a recycled buffer, which the append copies.
func (c *Capture) appendEntry(ctx context.Context, subject string, e Entry) error {
	buf, _ := c.entries.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	*buf = e.AppendTo((*buf)[:0])
	defer c.entries.Put(buf)
	// The write reached the source: its entry is journaled even if the
	// client hangs up, within the tries of the journal's retry policy.
	ctx = context.WithoutCancel(ctx)
	return c.journalRetry.Do(ctx, func(int) error {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		seq, err := c.journal.Append(actx, subject, *buf)
		if err == nil {
			c.sawSeq(seq)
		}
		return err
	})
}

// sawSeq raises journaled to seq.
func (c *Capture) sawSeq(seq uint64) {
	for {
		cur := c.journaled.Load()
		if seq <= cur || c.journaled.CompareAndSwap(cur, seq) {
			return
		}
	}
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
		seq, err := c.journal.Append(ctx, HeartbeatSubject(id), Entry{Op: OpHeartbeat, At: time.Now()}.Marshal())
		if err != nil {
			c.logger.Warn("heartbeat not journaled", "migration", id, "err", err)
			continue
		}
		c.sawSeq(seq)
	}
}
