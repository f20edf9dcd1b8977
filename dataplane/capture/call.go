package capture

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/golang/protobuf/proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/domain"
)

// call is one intercepted request.
type call struct {
	cluster string
	a       *armed
	kind    string // "write", "ddl", "forbidden", ""
	// unknown: forbidden as a method this proxy does not know.
	unknown bool
	op      string
	method  string
	db      string
	coll    string
	// token names a write journaled first; its outcome entry names it.
	token string
	// first: the write was journaled before it was forwarded, and its
	// outcome is journaled apart (see outcome.go).
	first   bool
	subject string // its journal subject, once its collection is resolved
	claim   *keyClaim
	// afterKey is, for an insert, the largest key the source had given
	// an insert of its collection before it (Entry.AfterKey).
	afterKey int64
}

// before runs ahead of forwarding: it refuses a forbidden operation under
// policy reject, waits while writes are held, counts the write in flight
// and waits until no write that may touch its keys is. lookup resolves
// writes' collections (nil: every write claims its whole collection, and
// aliases are journaled as named). after, broken or unsent must follow.
func (c *Capture) before(ctx context.Context, clusterID, fullMethod string, req []byte, dbHeader string, lookup CollectionLookup) (*call, error) {
	method := fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
	k := &call{method: method, cluster: clusterID}
	k.kind, k.op, k.unknown = c.kindOf(fullMethod)
	if k.kind == "" {
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
	msg, _ := milvus.DecodeRequest(method, req)
	k.db, k.coll = milvus.RequestNames(method, msg, dbHeader)
	if k.kind == "forbidden" && a.policy != domain.PolicyFail {
		if k.unknown {
			return nil, &Refusal{Reason: fmt.Sprintf(
				"zdm: %s is refused while migration %s of this cluster runs: this zdm does not know the method, so cannot carry what it changes to the target; retry after the migration, or cancel it", method, a.migrationID)}
		}
		return nil, &Refusal{Reason: fmt.Sprintf(
			"zdm: %s is forbidden while migration %s of this cluster runs; retry after the migration, or cancel it", method, a.migrationID)}
	}
	if err := c.fits(k, msg, req); err != nil {
		return nil, err
	}
	if err := refuseCreate(a, msg); err != nil {
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
		if accessMethods[method] {
			// One subject for them all, whatever database a client named:
			// a grant is replayed after the role it names is made.
			k.subject = DatabaseSubject(a.migrationID, "default")
		}
		k.claim = claimOf(k, msg, pk)
		if k.op == OpInsert {
			k.afterKey = c.afterKeyOf(ctx, k.subject)
		}
		if err := c.order.acquire(ctx, k.claim); err != nil {
			a.inflight.Done()
			return nil, status.FromContextError(err).Err()
		}
	}
	if k.kind == "write" {
		if !c.inTerm() {
			// Another zdmd may drive already: its applier would take this
			// write for one of a dead zdmd's.
			c.order.release(k.claim)
			a.inflight.Done()
			return nil, termEnded(a.migrationID, method)
		}
		if err := c.journalFirst(ctx, k, req); err != nil {
			if errors.Is(err, domain.ErrStoreFull) {
				a.inflight.Done() // refused: the entry is not in the journal
			} else {
				// The entry may have landed: its outcome says it was not sent.
				c.resolve(k, OutcomeUnsent, nil)
			}
			c.order.release(k.claim)
			// Not forwarded: nothing happened, and the client may retry.
			return nil, status.Errorf(codes.Unavailable, "zdm: the write could not be recorded before forwarding (%v); it was not sent, retry it", err)
		}
	}
	return k, nil
}

// kindOf is what a call of fullMethod does to a cluster: "write" (with
// its op), "ddl", "forbidden" (unknown if this proxy does not know the
// method), or "" for what changes nothing a migration carries.
func (c *Capture) kindOf(fullMethod string) (kind, op string, unknown bool) {
	method := fullMethod[strings.LastIndexByte(fullMethod, '/')+1:]
	switch {
	case writeMethods[method] != "":
		return "write", writeMethods[method], false
	case ddlMethods[method] || accessMethods[method]:
		return "ddl", OpDDL, false
	case forbiddenMethods[method]:
		return "forbidden", "", false
	case strings.HasPrefix(fullMethod, "/"+milvusService+"/") && !c.methods[method]:
		// A method newer than what this proxy knows may change the source
		// in a way no journal entry carries: refused like a forbidden one
		// while a migration runs, rather than let around the capture.
		// Other services (gRPC's health checks) are not Milvus's.
		return "forbidden", "", true
	}
	return "", "", false
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
	keys, ok := milvus.WrittenKeys(msg, pk)
	if !ok {
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
		if len(c.known) > max(c.sweepAt, minSweep) {
			// Each sweep lets the map double before the next: the work
			// stays in proportion to the look-ups.
			maps.DeleteFunc(c.known, func(_ collectionRef, k knownCollection) bool {
				return k.name == "" && time.Since(k.at) >= lookupRetry
			})
			c.sweepAt = 2 * len(c.known)
		}
		c.mu.Unlock()
		return known, nil
	})
	return v.(knownCollection)
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
	return Entry{Op: k.op, Method: k.method, Database: k.db, Collection: k.coll, Request: req, At: time.Now(), Intent: k.token, AfterKey: k.afterKey}
}

// unsent ends a call that never reached the cluster.
func (c *Capture) unsent(ctx context.Context, k *call) {
	if k.a == nil {
		return
	}
	c.order.release(k.claim)
	if k.first {
		c.resolve(k, OutcomeUnsent, nil)
		return
	}
	k.a.inflight.Done()
}

// afterFirst ends a write journaled first: the source has answered, so a
// write of the same keys may go on, and the outcome is journaled behind
// the client's answer.
func (c *Capture) afterFirst(ctx context.Context, k *call, resp []byte) error {
	c.order.release(k.claim)
	ok, res := milvus.Succeeded(k.method, resp)
	switch {
	case ok:
		if k.op == OpInsert {
			c.sawKeys(k.subject, milvus.KeysOfIDs(res.GetIDs()).Ints)
		}
		c.resolve(k, OutcomeApplied, res)
	case milvus.StoppedWaiting(res.GetStatus()):
		c.logger.Warn("a write the source stopped waiting for will be repaired from the source", "migration", k.a.migrationID,
			"method", k.method, "collection", k.db+"/"+k.coll)
		c.resolve(k, OutcomeUnknown, res)
	default:
		c.resolve(k, OutcomeRefused, res)
	}
	return nil
}

// after ends a call the cluster answered. A write was journaled before it
// was sent, and its outcome follows (afterFirst). Acknowledged DDL is
// journaled before the client gets its answer; under policy fail a
// forbidden operation fails the migration. An error means the DDL could
// not be journaled: the client must not be told it succeeded, and the
// migration fails.
func (c *Capture) after(ctx context.Context, k *call, req, resp []byte) error {
	if k.a == nil {
		return nil
	}
	if k.first {
		return c.afterFirst(ctx, k, resp)
	}
	defer k.a.inflight.Done()
	// Released once journaled: a write of the same keys waits for it.
	defer c.order.release(k.claim)
	if k.kind == "forbidden" {
		if ok, _ := milvus.Succeeded(k.method, resp); ok && c.failer != nil {
			detail := fmt.Sprintf("%s on %s was let through the proxy (on_forbidden_op: fail)", k.method, strings.Trim(k.db+"/"+k.coll, "/"))
			if err := c.failer.FailMigration(context.WithoutCancel(ctx), k.a.migrationID, "forbidden_operation", detail); err != nil {
				c.logger.Error("fail migration after a forbidden operation", "migration", k.a.migrationID, "err", err)
			}
		}
		return nil
	}
	if ok, _ := milvus.Succeeded(k.method, resp); !ok {
		return nil // only acknowledged DDL is journaled
	}
	if accessMethods[k.method] {
		sealed, err := sealPasswords(c.sealer, k.a.migrationID, k.method, req)
		if err != nil {
			c.journalLost(ctx, k, "a password changed through the proxy could not be sealed for the journal", err)
			return &Refusal{Reason: fmt.Sprintf("zdm: the source applied this %s, but migration %s could not record it (%v); "+
				"the migration fails", k.method, k.a.migrationID, err)}
		}
		req = sealed
	}
	if err := c.appendEntry(ctx, k.subject, k.entry(req)); err != nil {
		if !c.inTerm() {
			c.termEnded(k)
			return &Refusal{Reason: fmt.Sprintf("zdm: the source applied this %s, but this zdmd stopped driving migration %s before recording it; "+
				"the zdmd that drives it next copies its outcome from the source", k.method, k.a.migrationID)}
		}
		c.journalLost(ctx, k, "a write acknowledged by the source could not be journaled", err)
		return &Refusal{Reason: fmt.Sprintf("zdm: the source applied this %s, but migration %s could not record it (%v); "+
			"the migration fails, and the write stays on the source only", k.method, k.a.migrationID, err)}
	}
	if k.kind == "ddl" && !accessMethods[k.method] {
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
