package rowcopy

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/retry"
)

// Config tunes the copy.
type Config struct {
	// Workers write pages to the target in parallel.
	Workers int
	// Readers read ranges of the source in parallel (default 2 x
	// Workers), so that a writer finds a page waiting. More of them only
	// add load to the source and pages to memory (make bench: 16 readers
	// for 4 writers copied slower than 8).
	Readers int
	// PageBytes sizes a page (default 6 MiB): a collection's pages hold
	// as many rows as fit, by its schema. Memory holds at most Readers +
	// Workers pages. Each query costs the source a fixed share besides
	// its rows, so large pages load the source less per row copied (go run
	// ./bench/dataplane -only copy -page N, 128-dim rows: pages of 2,674
	// rows, 2 MiB, took 6.9 us of source CPU per row, pages of 8,000 rows
	// 4.0-4.7 us, and the copy ran about a third faster).
	PageBytes int
	// PageRows, when set, fixes the rows of a page instead.
	PageRows int
	// RangeRows is about how many rows a checkpointed range holds
	// (default: a page's rows, so a range is read with one query).
	RangeRows int
	// Retry is how a failed read or write of a page is tried again
	// (default DefaultRetry).
	Retry retry.Policy
	// Planners plan, and make on the target, that many collections at a
	// time (default 4): each waits on a flush, a count and a few queries
	// of the source, or on the target making a collection and its
	// indexes, and a source with hundreds of collections would otherwise
	// wait minutes before the first row moves.
	Planners int
}

// DefaultRetry tries a page's read or write 4 times, 200 ms apart at
// first, three times longer each time.
func DefaultRetry() retry.Policy {
	return retry.Policy{Attempts: 4, First: 200 * time.Millisecond, Factor: 3}
}

// WithDefaults fills what is unset.
func (c Config) WithDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Readers <= 0 {
		c.Readers = 2 * c.Workers
	}
	if c.PageBytes <= 0 {
		c.PageBytes = 6 << 20
	}
	if c.Planners <= 0 {
		c.Planners = 4
	}
	c.Retry = c.Retry.Or(DefaultRetry())
	return c
}

// PageRowsFor is the rows of one page of col.
func (c Config) PageRowsFor(schema *schemapb.CollectionSchema) int {
	if c.PageRows > 0 {
		return c.PageRows
	}
	// Milvus answers at most queryWindow rows per query.
	return max(100, min(milvus.QueryWindow, c.PageBytes/rowBytes(schema)))
}

// RangeRowsFor is about how many rows one checkpointed range of col holds.
// A range of one page is read with one query: a query whose limit is below
// the range's rows makes every shard return that many rows, and the
// surplus is read again by the next page.
func (c Config) RangeRowsFor(schema *schemapb.CollectionSchema) int {
	if c.RangeRows > 0 {
		return c.RangeRows
	}
	return c.PageRowsFor(schema)
}

// rowBytes estimates the size of one row.
func rowBytes(s *schemapb.CollectionSchema) int {
	n := 0
	for _, f := range s.GetFields() {
		dim := 0
		for _, kv := range f.GetTypeParams() {
			if kv.GetKey() == "dim" {
				dim, _ = strconv.Atoi(kv.GetValue())
			}
		}
		switch f.GetDataType() {
		case schemapb.DataType_FloatVector:
			n += 4 * dim
		case schemapb.DataType_Float16Vector, schemapb.DataType_BFloat16Vector:
			n += 2 * dim
		case schemapb.DataType_BinaryVector:
			n += dim / 8
		case schemapb.DataType_VarChar, schemapb.DataType_String, schemapb.DataType_JSON, schemapb.DataType_Array, schemapb.DataType_SparseFloatVector:
			n += 256 // a guess: these have no fixed size
		default:
			n += 8
		}
	}
	if s.GetEnableDynamicField() {
		n += 256
	}
	return max(n, 1)
}

// Copier copies every database, collection, partition, index, alias and
// row of a source onto a target.
type Copier struct {
	resolve milvus.Resolver
	cfg     Config
	logger  *slog.Logger

	mu sync.Mutex
	// fresh holds the migrations planned by this process whose copy has
	// not started: no range of theirs has been written by anyone.
	fresh map[string]bool
	// share, when set, shares the ranges with other zdmd.
	share Sharing
	notes Noter // see NoteTo
	// rateLimit, when set, reads a migration's copy rate limit as it is
	// now (see FollowRateLimit).
	rateLimit func(ctx context.Context, migrationID string) (int64, error)
}

// FollowRateLimit makes a running copy follow changes of its migration's
// copy rate limit, read every second; without it a copy keeps the limit
// it started with.
func (c *Copier) FollowRateLimit(read func(ctx context.Context, migrationID string) (int64, error)) {
	c.rateLimit = read
}

// NewCopier returns a copier.
func NewCopier(r milvus.Resolver, cfg Config, logger *slog.Logger) *Copier {
	if logger == nil {
		logger = slog.Default()
	}
	return &Copier{resolve: r, cfg: cfg.WithDefaults(), logger: logger, fresh: map[string]bool{}}
}

// startCopy reports whether the copy starts on untouched ranges, and
// makes every later attempt (a retry, a resume) count as not fresh.
func (c *Copier) startCopy(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	fresh := c.fresh[id]
	delete(c.fresh, id)
	return fresh
}

// Copy creates the structure on the target and copies every range not
// yet checkpointed: Readers ranges are read at a time, and their pages are
// written by Workers writers as soon as they arrive.
func (c *Copier) Copy(ctx context.Context, m *domain.Migration, checkpoint func(context.Context, domain.BulkCopyProgressed) error) error {
	src, dst, err := c.connect(ctx, m)
	if err != nil {
		return err
	}
	defer src.Close()
	defer dst.Close()
	fresh := c.startCopy(m.ID)
	ch := choicesOf(m)
	th := newThrottle(m.Options.CopyRateLimit)
	if c.rateLimit != nil {
		fctx, stop := context.WithCancel(ctx)
		defer stop()
		go th.follow(fctx, func(ctx context.Context) (int64, error) { return c.rateLimit(ctx, m.ID) })
	}

	var (
		mu        sync.Mutex
		remaining = map[string]int{}                // ranges left to copy, by collection
		cols      = map[string]*milvus.Collection{} // every planned collection still on the source
		elsewhere []job                             // ranges another zdmd holds
	)
	prep := preparer{c: c, src: src, dst: dst, m: m, choices: ch, checkpoint: checkpoint}
	// Several collections are prepared at a time, and the copy of the
	// first ones starts while the others are being planned and made.
	feed := func(ctx context.Context, send func(job) bool) error {
		return inParallel(ctx, m.Collections, c.cfg.Planners, func(ctx context.Context, _ int, p *domain.CollectionProgress) error {
			col, jobs, err := prep.prepare(ctx, p)
			if col != nil {
				mu.Lock()
				// Every planned collection gets its load and aliases at
				// the end, those finished before a restart too.
				cols[col.Key()] = col
				if len(jobs) > 0 {
					remaining[col.Key()] = len(jobs) // before any of them can finish
				}
				mu.Unlock()
			}
			for _, j := range jobs {
				if !send(j) {
					return context.Cause(ctx)
				}
			}
			return err
		})
	}
	writes, stopWriters := c.writers(dst)
	defer stopWriters()
	// finished records a range copied here, or seen recorded by another.
	finished := func(ctx context.Context, j job, rows int64, err error, record bool) error {
		p := domain.BulkCopyProgressed{Database: j.col.Database, Collection: j.col.Name, Range: j.r.Name(), Rows: rows}
		if isCollectionGone(ctx, src, j.col.Database, j.col.Name, err) {
			p, err = domain.BulkCopyProgressed{Database: j.col.Database, Collection: j.col.Name, Skipped: "dropped on the source during the copy"}, nil
		}
		if err != nil {
			return err
		}
		mu.Lock()
		remaining[j.col.Key()]--
		p.Done = remaining[j.col.Key()] == 0
		mu.Unlock()
		if !record {
			return nil
		}
		c.logger.Info("range copied", "migration", m.ID, "collection", j.col.Key(), "range", j.r.Name(), "rows", rows, "read_at", j.ts, "last_of_collection", p.Done)
		return checkpoint(ctx, p)
	}
	run := func(ctx context.Context, j job) error {
		return c.claimed(ctx, m.ID, j, func(held context.Context, first bool) error {
			rows, err := c.copyRange(held, src, j.col, j.r, j.ts, fresh && first, th, writes)
			return finished(ctx, j, rows, err, true)
		}, func() {
			mu.Lock()
			elsewhere = append(elsewhere, j)
			mu.Unlock()
		}, func() error { return finished(ctx, j, 0, nil, false) })
	}
	if err := c.each(ctx, feed, run); err != nil {
		return err
	}
	if err := awaitElsewhere(ctx, c.logger.With("migration", m.ID), "ranges", elsewhere, func(j job) (bool, error) {
		return c.copied(ctx, m.ID, j.col.Database, j.col.Name, j.r.Name())
	}, func(j job) (bool, error) {
		mu.Lock()
		elsewhere = nil
		mu.Unlock()
		if err := run(ctx, j); err != nil {
			return false, err
		}
		mu.Lock()
		defer mu.Unlock()
		return len(elsewhere) == 0, nil
	}, func(j job) error { return finished(ctx, j, 0, nil, false) }); err != nil {
		return err
	}
	if err := c.finishStructure(ctx, src, dst, m, cols, ch); err != nil {
		return err
	}
	if ch.segments {
		// Each partition's staged files went once it was imported; what
		// is left is the empty stage.
		if sc, err := prep.segmentCopier(); err == nil {
			_ = sc.Target.Remove(ctx, sc.Stage)
		}
	}
	return nil
}

// connect dials the migration's source and target.
func (c *Copier) connect(ctx context.Context, m *domain.Migration) (src, dst *milvus.Conn, err error) {
	if src, err = milvus.Connect(ctx, c.resolve, m.Source.ID, "source"); err != nil {
		return nil, nil, err
	}
	if dst, err = milvus.Connect(ctx, c.resolve, m.TargetCluster.ClusterID, "target"); err != nil {
		src.Close()
		return nil, nil, err
	}
	return src, dst, nil
}

// readTimestamp returns the timestamp the plan and the copy of col read
// at. The plan and the copy take it after the capture was armed (they run
// only then), so every write the source acknowledged before the capture is
// stamped earlier and every page read at it holds them; the writes after
// are journaled. A read at a past timestamp is answered at once, where a
// strong read waits for the server's next time tick: pages come several
// times faster. A source that gives no timestamp (see ReadTimestamp) is
// read strongly, which is slower and as complete.
func (c *Copier) readTimestamp(ctx context.Context, src *milvus.Conn, col *milvus.Collection) uint64 {
	ts, err := src.ReadTimestamp(ctx, col.Database, col.Name)
	if err != nil {
		c.logger.Warn("reading strongly consistent pages (slower): no read timestamp from the source",
			"collection", col.Key(), "err", err)
		return 0
	}
	return ts
}

// choices is what the copy reads back from its preflight.
type choices struct {
	// loadedForCopy are the collections the source had not loaded: the
	// copy loads them, and releases them at its end.
	loadedForCopy map[string]bool
	// segments is a segment copy; byRows the collections it moves by rows.
	segments bool
	byRows   map[string]bool
}

func choicesOf(m *domain.Migration) choices {
	var pf struct {
		Unloaded []string `json:"loaded_for_copy"`
		Mode     string   `json:"copy_mode"`
		ByRows   []string `json:"copied_by_rows"`
	}
	if m.Preflight != nil {
		_ = json.Unmarshal(m.Preflight, &pf)
	}
	ch := choices{loadedForCopy: map[string]bool{}, segments: pf.Mode == domain.CopyModeSegments, byRows: map[string]bool{}}
	for _, k := range pf.Unloaded {
		ch.loadedForCopy[k] = true
	}
	for _, s := range pf.ByRows {
		key, _, _ := strings.Cut(s, ":") // "db/coll: why"
		ch.byRows[key] = true
	}
	return ch
}

// createOnTarget makes the database, collection, partitions and indexes;
// each step leaves what exists alone, so a resumed copy repeats it safely.
func createOnTarget(ctx context.Context, dst *milvus.Conn, col *milvus.Collection, m *domain.Migration) error {
	if err := dst.CreateDatabase(ctx, col.Database); err != nil {
		return err
	}
	level := commonpb.ConsistencyLevel(commonpb.ConsistencyLevel_value[col.ConsistencyLevel])
	// The source's schema as the target gets it.
	schema := proto.Clone(col.Schema).(*schemapb.CollectionSchema)
	set := milvus.CollectionSettings{Shards: col.ShardsNum, Level: level, Properties: col.Properties, Partitions: col.NumPartitions}
	if m.Options.AutoID == domain.AutoIDPreserveKeys {
		set.Properties = milvus.KeepKeys(schema, col.Properties)
	}
	if err := dst.CreateCollection(ctx, col.Database, schema, set); err != nil {
		return err
	}
	for _, p := range col.Partitions {
		if p != "_default" && !hasPartitionKey(col) {
			if err := dst.CreatePartition(ctx, col.Database, col.Name, p); err != nil {
				return err
			}
		}
	}
	for _, idx := range col.Indexes {
		if err := dst.CreateIndex(ctx, col.Database, col.Name, idx); err != nil {
			return err
		}
	}
	return nil
}
