package livesync

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang/protobuf/proto"
	"golang.org/x/sync/errgroup"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/verify"
)

// Every uncertain write repaired is kept beside the apply positions, by
// its journal sequence, so that whichever zdmd runs the switch repairs it
// again: the one that repaired it may be dead by then, and the journal
// has been trimmed past it.

// repairAgainParallel bounds the repairs made at once at the switch.
const repairAgainParallel = 16

// repairedPrefix starts the keys of a migration's kept repairs.
func repairedPrefix(migrationID string) string {
	return capture.JournalPrefix(migrationID) + "repaired."
}

// keepRepair records the repaired entry data (at journal sequence seq)
// for RepairAgain.
func (a *Applier) keepRepair(ctx context.Context, seq uint64, data []byte) error {
	key := repairedPrefix(a.id) + strconv.FormatUint(seq, 10)
	if err := a.positions.Put(ctx, key, data); err != nil {
		return fmt.Errorf("keep the repair of journal entry %d for the switch: %w", seq, err)
	}
	return nil
}

// keptRepair is an uncertain write that was repaired, to repair again.
type keptRepair struct {
	seq   uint64
	entry capture.Entry
	msg   proto.Message
}

// KeptRepairs reads every uncertain write of the migration that was
// repaired, by this zdmd or another, and not settled since (settle.go),
// and returns them with their collections.
func (a *Applier) KeptRepairs(ctx context.Context) ([]keptRepair, map[[2]string]bool, error) {
	return a.keptRepairs(ctx, func(seq uint64, _ capture.Entry) bool { return !a.isSettled(seq) })
}

// settledRepairsOf reads the kept repairs of colls that were settled.
func (a *Applier) settledRepairsOf(ctx context.Context, colls map[[2]string]bool) ([]keptRepair, error) {
	kept, _, err := a.keptRepairs(ctx, func(seq uint64, e capture.Entry) bool {
		return a.isSettled(seq) && colls[[2]string{e.Database, e.Collection}]
	})
	return kept, err
}

// keptRepairs reads the kept repairs that take accepts.
func (a *Applier) keptRepairs(ctx context.Context, take func(seq uint64, e capture.Entry) bool) ([]keptRepair, map[[2]string]bool, error) {
	kept, err := a.positions.Matching(ctx, repairedPrefix(a.id)+"*")
	if err != nil {
		return nil, nil, fmt.Errorf("read the repaired writes: %w", err)
	}
	out, colls := make([]keptRepair, 0, len(kept)), map[[2]string]bool{}
	for key, data := range kept {
		seq, err := strconv.ParseUint(strings.TrimPrefix(key, repairedPrefix(a.id)), 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("repaired write %s: %w", key, err)
		}
		e, err := capture.UnmarshalEntry(data)
		if err != nil {
			return nil, nil, fmt.Errorf("repaired write %s: %w", key, err)
		}
		if !take(seq, e) {
			continue
		}
		msg := milvus.RequestMessage(e.Method)
		if msg == nil {
			continue
		}
		if err := proto.Unmarshal(e.Request, msg); err != nil {
			return nil, nil, fmt.Errorf("decode %s: %w", e.Method, err)
		}
		out = append(out, keptRepair{seq: seq, entry: e, msg: msg})
		colls[[2]string{e.Database, e.Collection}] = true
	}
	return out, colls, nil
}

// RepairAgain repairs once more the writes KeptRepairs read. A write a
// dead zdmd had sent may still sit in the source's queue when it is
// repaired, and be applied after the repair read its keys: the repair then
// left the target without it. Called while writes are held at the switch,
// once the journal is drained, it reads the source as it stays: so the
// writes of one collection are repaired together, one strong read of the
// source for all their keys, whatever their order was.
func (a *Applier) RepairAgain(ctx context.Context, kept []keptRepair) error {
	began := time.Now()
	byColl := map[[2]string][]keptRepair{}
	for _, k := range kept {
		c := [2]string{k.entry.Database, k.entry.Collection}
		byColl[c] = append(byColl[c], k)
	}
	// In parallel: each strong read of the source waits for its next
	// time tick, and writes are held meanwhile.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(repairAgainParallel)
	for c, ks := range byColl {
		g.Go(func() error {
			if err := a.repairCollectionAgain(gctx, c[0], c[1], ks); err != nil {
				return fmt.Errorf("repair again the writes of %s/%s without a known outcome: %w", c[0], c[1], err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(kept) > 0 {
		a.logger.Info("writes without a known outcome repaired again while writes are held", "writes", len(kept),
			"collections", len(byColl), "took", time.Since(began).Round(time.Millisecond))
	}
	return nil
}

// repairChunk bounds the keys of one repair read, well under the rows a
// Milvus query returns.
const repairChunk = 4096

// repairGroup is the kept writes of a collection repaired by one read:
// those that wrote one partition, or the deletes.
type repairGroup struct {
	part    string
	restore bool
}

// repairCollectionAgain repairs the kept writes of one collection.
func (a *Applier) repairCollectionAgain(ctx context.Context, db, coll string, kept []keptRepair) error {
	col, err := a.repairedCollection(ctx, db, coll)
	if err != nil || col == nil {
		return err
	}
	groups := map[repairGroup]*keySet{}
	for _, k := range kept {
		keys, part, err := a.touchedKeys(ctx, db, coll, col, k.msg)
		if err != nil {
			return err
		}
		if keys.Len() == 0 {
			if err := a.repairWithoutKeys(ctx, k.entry, col, part, true); err != nil {
				return err
			}
			continue
		}
		grp := repairGroup{part: part, restore: k.entry.Method != "Delete"}
		if groups[grp] == nil {
			groups[grp] = &keySet{}
		}
		groups[grp].add(keys)
	}
	// The groups and their chunks at once: writes are held and the source
	// stays as it is, so each read gives what the others would, and each
	// repair writes its own keys over the target as the source holds them
	// (a key in two groups gets the same row, or the same delete). One
	// after the other, a collection with inserts and deletes to repair
	// kept writes held for two rounds of strong reads.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(repairGroupParallel)
	for grp, set := range groups {
		for _, keys := range set.chunks(repairChunk) {
			g.Go(func() error { return a.repairKeys(gctx, db, coll, col, grp.part, keys, grp.restore) })
		}
	}
	return g.Wait()
}

// repairGroupParallel bounds the repairs of one collection made at once
// (collections are repaired repairAgainParallel at a time).
const repairGroupParallel = 4

// keySet gathers keys, each once.
type keySet struct {
	ints map[int64]struct{}
	strs map[string]struct{}
}

func (s *keySet) add(k milvus.Keys) {
	if s.ints == nil {
		s.ints, s.strs = map[int64]struct{}{}, map[string]struct{}{}
	}
	for _, i := range k.Ints {
		s.ints[i] = struct{}{}
	}
	for _, v := range k.Strs {
		s.strs[v] = struct{}{}
	}
}

// chunks returns the keys in order, at most n at a time.
func (s *keySet) chunks(n int) []milvus.Keys {
	var out []milvus.Keys
	for c := range slices.Chunk(slices.Sorted(maps.Keys(s.ints)), n) {
		out = append(out, milvus.Keys{Ints: c})
	}
	for c := range slices.Chunk(slices.Sorted(maps.Keys(s.strs)), n) {
		out = append(out, milvus.Keys{Strs: c})
	}
	return out
}

// repairAndCheck repairs the kept writes again and compares the clusters
// (heldCheck), at once: each waits a round of strong reads, and writes are
// held meanwhile. A repair writes over the target the source's rows as
// they stay, so a collection the check finds equal while repairs run stays
// equal after them; one found different among those repaired is compared
// again once the repairs are done. It returns the report and how long the
// repairs took.
func repairAndCheck(ctx context.Context, r *syncRun, kept []keptRepair, repaired map[[2]string]bool,
	pre *verify.Report, fence0 uint64, described *verify.Described) (*verify.Report, time.Duration, error) {
	began := time.Now()
	var took time.Duration
	var rep *verify.Report
	g, gctx := errgroup.WithContext(ctx)
	if len(kept) > 0 {
		g.Go(func() error {
			err := r.applier.RepairAgain(gctx, kept)
			took = time.Since(began)
			return err
		})
	}
	g.Go(func() (err error) {
		rep, err = heldCheck(gctx, r, pre, fence0, described, repaired)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, took, err
	}
	again, differ := map[[2]string]bool{}, map[[2]string]bool{}
	for _, k := range kept {
		if c := [2]string{k.entry.Database, k.entry.Collection}; !equalIn(rep, c) {
			again[c] = true
		}
	}
	for _, c := range rep.Collections {
		if k := [2]string{c.Database, c.Collection}; !c.Equal && !again[k] {
			differ[k] = true
		}
	}
	// A collection found different whose repairs were settled before the
	// hold (the check reads it: it is among repaired) is repaired again
	// now, in case a write landed later than zdm allows it (settle.go),
	// and compared once more.
	if len(differ) > 0 {
		late, err := r.applier.settledRepairsOf(ctx, differ)
		if err != nil {
			return nil, took, err
		}
		if len(late) > 0 {
			t0 := time.Now()
			if err := r.applier.RepairAgain(ctx, late); err != nil {
				return nil, took, err
			}
			took += time.Since(t0)
			for _, k := range late {
				again[[2]string{k.entry.Database, k.entry.Collection}] = true
			}
		}
	}
	if len(again) == 0 {
		return rep, took, nil
	}
	after, err := verify.QuickCheckWith(ctx, r.source, r.target, verify.QuickOptions{Known: described, OneClock: true,
		Include: func(db, coll string) bool { return again[[2]string{db, coll}] }})
	if err != nil {
		return nil, took, err
	}
	rep.Equal = true
	for i, c := range rep.Collections {
		if again[[2]string{c.Database, c.Collection}] {
			for _, a := range after.Collections {
				if a.Database == c.Database && a.Collection == c.Collection {
					rep.Collections[i] = a
				}
			}
		}
		rep.Equal = rep.Equal && rep.Collections[i].Equal
	}
	return rep, took, nil
}

// equalIn reports whether rep found collection c equal (true if it does
// not name it).
func equalIn(rep *verify.Report, c [2]string) bool {
	for _, cr := range rep.Collections {
		if cr.Database == c[0] && cr.Collection == c[1] {
			return cr.Equal
		}
	}
	return true
}

// writtenPartition is the partition a write named or, for rows
// (restore) written naming none, the default one they went to; "" for a
// delete naming none, or where a partition cannot be named (a
// partition-key collection).
func writtenPartition(col *milvus.Collection, part string, restore bool) string {
	switch {
	case milvus.HasPartitionKeyField(col.Schema):
		return ""
	case part != "":
		return part
	case restore && slices.Contains(col.Partitions, defaultPartition):
		return defaultPartition
	}
	return ""
}

// defaultPartition is where Milvus puts rows written naming no partition.
const defaultPartition = "_default"
