package livesync

import (
	"context"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/zdm-io/zdm/dataplane/verify"
)

// heldCheck compares the clusters while writes are held. With pre, the
// check made before the hold with the journal applied up to fence0, it
// reads only the collections written since, those repaired again, those
// whose repairs were settled before the hold (settle.go), those pre found
// different or whose expired rows were deleted since (standsFor), and
// those it did not see; the others cannot have changed
// through the proxy, and keep pre's result. A collection repaired again
// while held has its keys walked where the counts differ; one whose
// repairs were settled before pre does not: pre read what they wrote, and
// the keys it points to account for the counts or the walk follows.
func heldCheck(ctx context.Context, r *syncRun, pre *verify.Report, fence0 uint64, described *verify.Described, repaired map[[2]string]bool) (*verify.Report, error) {
	if pre == nil {
		return verify.QuickCheckWith(ctx, r.source, r.target, verify.QuickOptions{Known: described, OneClock: true})
	}
	touched, other := r.applier.Touched(fence0)
	if other {
		// A DDL was applied since the check before the hold: every
		// collection is described again.
		return verify.QuickCheckWith(ctx, r.source, r.target, verify.QuickOptions{OneClock: true})
	}
	for k, ddl := range touched {
		if ddl {
			described.Forget(k[0], k[1])
		}
	}
	clean := map[[2]string]*verify.CollectionReport{}
	for i, c := range pre.Collections {
		if standsFor(c) {
			clean[[2]string{c.Database, c.Collection}] = &pre.Collections[i]
		}
	}
	for _, name := range pre.NotLoaded {
		db, coll, _ := strings.Cut(name, "/")
		clean[[2]string{db, coll}] = nil // skipped again, unless written
	}
	// What pre cannot stand for is read again, while the source is
	// listed: the collections written or repaired since, those whose
	// repairs were settled before the hold, and those pre cannot stand for.
	reread := map[[2]string]bool{}
	maps.Copy(reread, repaired)
	for k := range touched {
		reread[k] = true
	}
	settled := map[[2]string]bool{}
	r.applier.settledColls(settled)
	maps.Copy(reread, settled)
	for _, c := range pre.Collections {
		if !standsFor(c) {
			reread[[2]string{c.Database, c.Collection}] = true
		}
	}
	var kept []verify.CollectionReport
	var notLoaded []string
	written := r.applier.WrittenAfter(fence0)
	held := func(db, coll string) (*verify.CollectionReport, []string, bool) {
		k := [2]string{db, coll}
		if repaired[k] || touched[k] {
			return nil, nil, false // repaired, or its structure changed
		}
		for i := range pre.Collections {
			if c := &pre.Collections[i]; c.Database == db && c.Collection == coll {
				keys, ok := written(db, coll)
				return c, keys, ok
			}
		}
		return nil, nil, false
	}
	// A collection pre found equal that only writes of known keys changed
	// since: its counts and those rows stand for the whole.
	writtenOnly := func(db, coll string) bool {
		k := [2]string{db, coll}
		ddl, written := touched[k]
		return written && !ddl && !repaired[k] && !settled[k] && clean[k] != nil
	}
	rep, err := verify.QuickCheckWith(ctx, r.source, r.target, verify.QuickOptions{Held: held, WrittenOnly: writtenOnly, Known: described,
		First: slices.Collect(maps.Keys(reread)), Include: func(db, coll string) bool {
			k := [2]string{db, coll}
			c, ok := clean[k]
			switch {
			case !ok || reread[k]:
				return true
			case c == nil:
				notLoaded = append(notLoaded, db+"/"+coll)
			default:
				kept = append(kept, *c)
			}
			return false
		}})
	if err != nil {
		return nil, err
	}
	rep.Collections = append(rep.Collections, kept...)
	rep.NotLoaded = append(rep.NotLoaded, notLoaded...)
	sort.Strings(rep.NotLoaded)
	sort.Slice(rep.Collections, func(i, j int) bool {
		a, b := rep.Collections[i], rep.Collections[j]
		return a.Database+"/"+a.Collection < b.Database+"/"+b.Collection
	})
	return rep, nil
}

// standsFor says whether a collection's report from the check before the
// hold stands for it while writes are held, unless written since: it
// found the collection equal, and the target was not changed since by
// deleting the rows that check named (removeExpiredEarly).
func standsFor(c verify.CollectionReport) bool { return c.Equal && c.ExpiredRemovedEarly == 0 }
