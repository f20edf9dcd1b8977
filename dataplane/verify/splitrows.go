package verify

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"golang.org/x/sync/errgroup"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// Where the counts differ and no compared row does, rows under keys a side
// already holds explain the difference: on the source, inserts a client
// repeated (duplicates.go); on the target, zdm's doing. A key held in
// several partitions (splitkeys.go) is neither: each side holds a row of
// it in each of those partitions, and the target must hold it in the
// same ones. So the keys either side holds more than once are compared
// partition by partition: their rows beyond one, in partitions both sides
// hold them in, are taken out of both sides' extra rows; a key held in
// other partitions on one side than on the other is a difference.

// byPartition is what a comparison of keys partition by partition found.
type byPartition struct {
	// Rows of a key beyond its first partition, on each side: not a
	// repeated insert, whether the other side holds them alike or not.
	srcSplit, dstSplit int64
	splitKeys          int      // keys held alike in several partitions
	named              []string // keys held in other partitions on each side
}

// explainByPartition compares, partition by partition, the keys a side
// holds more than once (the source's from ledger when the walk kept one)
// and takes the split ones' rows out of both sides' extra rows. A
// collection of one partition, partitions that differ between the sides
// (the structure's comparison names them), a partition key (whose
// partitions cannot be named in a query, and whose keys are never split)
// or more keys than splitKeysMax leave the counts as they are.
func explainByPartition(ctx context.Context, cr *CollectionReport, col *milvus.Collection, src, dst sideOf, ledger *keyLedger) (byPartition, error) {
	var out byPartition
	if milvus.HasPartitionKeyField(col.Schema) {
		return out, nil
	}
	pk := col.PrimaryField()
	sp, err := samePartitions(ctx, src, dst)
	if err != nil || sp == nil {
		return out, err
	}
	var srcTwice, dstTwice []string
	g, gctx := errgroup.WithContext(ctx)
	switch {
	case ledger != nil:
		srcTwice = slices.Collect(maps.Keys(ledger.twice))
	case cr.SourceDuplicates > 0:
		g.Go(func() (err error) { srcTwice, err = heldMoreThanOnce(gctx, src, pk); return err })
	}
	if cr.TargetDuplicates > 0 {
		g.Go(func() (err error) { dstTwice, err = heldMoreThanOnce(gctx, dst, pk); return err })
	}
	if err := g.Wait(); err != nil {
		return out, err
	}
	keys := slices.Compact(slices.Sorted(slices.Values(append(srcTwice, dstTwice...))))
	if len(keys) == 0 || len(keys) > splitKeysMax {
		return out, nil
	}
	out, err = comparePartitions(ctx, src, dst, pk, keys, sp)
	if err != nil {
		return out, err
	}
	cr.SourceDuplicates = max(0, cr.SourceDuplicates-out.srcSplit)
	cr.TargetDuplicates = max(0, cr.TargetDuplicates-out.dstSplit)
	cr.SplitKeys = max(cr.SplitKeys, out.splitKeys)
	return out, nil
}

// samePartitions lists the partitions of a collection both sides have
// alike, and several of (nil otherwise).
func samePartitions(ctx context.Context, src, dst sideOf) ([]string, error) {
	var sp, dp []string
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { sp, err = src.c.PartitionNames(gctx, src.db, src.cl); return err })
	g.Go(func() (err error) { dp, err = dst.c.PartitionNames(gctx, dst.db, dst.cl); return err })
	if err := g.Wait(); err != nil || len(sp) < 2 || !slices.Equal(sp, dp) {
		return nil, err
	}
	return sp, nil
}

// comparePartitions finds in which of parts each side holds each of keys.
func comparePartitions(ctx context.Context, src, dst sideOf, pk *schemapb.FieldSchema, keys, parts []string) (byPartition, error) {
	var out byPartition
	read, err := readPartitions(ctx, src, dst, pk, nil, []string{pk.GetName()}, keys, parts)
	if err != nil {
		return out, err
	}
	for _, k := range keys {
		s, d := read.in(0, k), read.in(1, k)
		out.srcSplit += int64(max(0, len(s)-1))
		out.dstSplit += int64(max(0, len(d)-1))
		switch {
		case !slices.Equal(s, d):
			out.named = append(out.named, fmt.Sprintf("%s in partitions %s on the source, %s on the target", k, words(s), words(d)))
		case len(d) > 1:
			out.splitKeys++
		}
	}
	return out, nil
}

func words(parts []string) string {
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// heldMoreThanOnce walks a side's keys and returns those it holds in more
// than one row (nil: none, or more than a ledger keeps).
func heldMoreThanOnce(ctx context.Context, s sideOf, pk *schemapb.FieldSchema) ([]string, error) {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	l := newKeyLedger()
	var err error
	if pk.GetDataType() == schemapb.DataType_VarChar {
		err = drainPages(keyPages(ctx, s, pk, func(k milvus.Keys) []string { return k.Strs }, func(k string) string { return k }, l))
	} else {
		err = drainPages(keyPages(ctx, s, pk, func(k milvus.Keys) []int64 { return k.Ints }, func(k int64) string { return strconv.FormatInt(k, 10) }, l))
	}
	if err != nil || !l.kept() {
		return nil, err
	}
	return slices.Sorted(maps.Keys(l.twice)), nil
}

// drainPages reads pages until the last.
func drainPages[K any](next func() ([]K, error)) error {
	for {
		page, err := next()
		if err != nil || len(page) == 0 {
			return err
		}
	}
}
