package datatools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/retry"
)

// Target names a collection.
type CollectionName struct {
	Database, Collection string
}

// Mix weighs the operations of a load.
type Mix struct{ Insert, Upsert, Delete int }

// ParseMix reads "70:20:10" (insert:upsert:delete).
func ParseMix(s string) (Mix, error) {
	var m Mix
	if _, err := fmt.Sscanf(s, "%d:%d:%d", &m.Insert, &m.Upsert, &m.Delete); err != nil || m.Insert < 0 || m.Upsert < 0 || m.Delete < 0 || m.Insert+m.Upsert+m.Delete == 0 {
		return m, errors.New(`--mix must be insert:upsert:delete weights such as "70:20:10"`)
	}
	return m, nil
}

// LoadConfig shapes a load.
type LoadConfig struct {
	Targets  []CollectionName
	Rate     float64 // writes per second, all workers together
	Mix      Mix
	Batch    int // rows per insert
	Workers  int
	Seed     uint64
	Duration time.Duration // 0: until ctx ends
	// Retry sends a write that failed with UNAVAILABLE once more, a
	// second later, as the SDKs' own retries do: an insert whose answer
	// was lost may then be applied twice, and the source hold its keys
	// twice.
	Retry bool
}

// retryWait is how long a load with Retry waits before it sends a failed
// write again: about a gRPC client's first reconnect backoff.
const retryWait = time.Second

// Ack is one acknowledged write, as the journal file keeps it, or, with
// Unsure, a write whose call failed: it may or may not have been applied.
type Ack struct {
	Op         string    `json:"op"`
	Unsure     bool      `json:"unsure,omitempty"`
	Database   string    `json:"db"`
	Collection string    `json:"collection"`
	KeyType    string    `json:"key_type"`
	Keys       []string  `json:"keys"`
	Version    int64     `json:"version,omitempty"`
	Timestamp  uint64    `json:"ts"`
	At         time.Time `json:"at"`
	// Err is why an unsure write's call failed.
	Err string `json:"err,omitempty"`
}

// LoadStats counts a load's writes.
type LoadStats struct {
	Acknowledged int64
	Failed       int64
	// Retried counts the writes sent again (LoadConfig.Retry) after
	// their first call failed; Failed counts those that failed again.
	Retried int64
	// MaxGap is the longest time between two acknowledged writes: the
	// write pause a client saw.
	MaxGap  time.Duration
	LastErr string
}

type loadTarget struct {
	CollectionName
	schema *schemapb.CollectionSchema
	pk     *schemapb.FieldSchema
}

// Load writes until cfg.Duration passes or ctx ends, appending every
// acknowledged write to journal (one JSON line each).
func Load(ctx context.Context, c *milvus.Conn, cfg LoadConfig, journal io.Writer) (LoadStats, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 10
	}
	if cfg.Rate <= 0 {
		return LoadStats{}, errors.New("--rate must be positive")
	}
	var targets []loadTarget
	for _, t := range cfg.Targets {
		col, err := structure(ctx, c, t)
		if err != nil {
			return LoadStats{}, err
		}
		targets = append(targets, loadTarget{CollectionName: t, schema: col.Schema, pk: col.PrimaryField()})
	}
	if len(targets) == 0 {
		return LoadStats{}, errors.New("no collections to write to")
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	l := &loader{c: c, cfg: cfg, journal: json.NewEncoder(journal), run: time.Now().UnixNano() % 1_000_000}
	var wg sync.WaitGroup
	for w := 0; w < cfg.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.worker(ctx, w, targets)
		}()
	}
	wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats, nil
}

// structureWait bounds how long a load waits for an endpoint that does
// not answer its first reads.
const structureWait = 30 * time.Second

// structure reads a target's schema. An endpoint that is restarting (a
// zdmd killed behind a load balancer) answers UNAVAILABLE for a moment;
// the load waits that out, as it does for its writes, instead of ending
// before it began. Any other answer (no such collection) is final.
func structure(ctx context.Context, c *milvus.Conn, t CollectionName) (*milvus.Collection, error) {
	ctx, cancel := context.WithTimeout(ctx, structureWait)
	defer cancel()
	var col *milvus.Collection
	err := retry.Policy{First: 100 * time.Millisecond, Max: 2 * time.Second}.Do(ctx, func(int) error {
		var err error
		col, err = c.Structure(ctx, t.Database, t.Collection)
		if err != nil && status.Code(err) != codes.Unavailable {
			return retry.Stop(err)
		}
		return err
	})
	return col, err
}

type loader struct {
	c       *milvus.Conn
	cfg     LoadConfig
	run     int64
	version atomic.Int64
	seq     atomic.Int64

	mu      sync.Mutex
	journal *json.Encoder
	stats   LoadStats
	lastAck time.Time
}

func (l *loader) worker(ctx context.Context, w int, targets []loadTarget) {
	r := rand.New(rand.NewPCG(l.cfg.Seed, uint64(w)))
	live := map[int][]milvus.Keys{} // per target: key batches this worker owns
	interval := time.Duration(float64(time.Second) * float64(l.cfg.Workers) / l.cfg.Rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	total := l.cfg.Mix.Insert + l.cfg.Mix.Upsert + l.cfg.Mix.Delete
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ti := r.IntN(len(targets))
		t := targets[ti]
		pick := r.IntN(total)
		op := "insert"
		if pick >= l.cfg.Mix.Insert && len(live[ti]) > 0 {
			op = "delete"
			if pick < l.cfg.Mix.Insert+l.cfg.Mix.Upsert && !t.pk.GetAutoID() {
				op = "upsert"
			}
		}
		// A write in flight when the load ends finishes on its own, so the
		// end of a load never leaves a write unanswered.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		ack, err := l.write(wctx, r, t, op, live[ti])
		cancel()
		l.record(ack, err)
		if err != nil {
			continue
		}
		switch op {
		case "insert":
			live[ti] = append(live[ti], keysOfAck(ack))
		case "delete":
			live[ti] = live[ti][1:]
		}
	}
}

func (l *loader) write(ctx context.Context, r *rand.Rand, t loadTarget, op string, live []milvus.Keys) (Ack, error) {
	gen := milvus.RowGen{Schema: t.schema, Rand: r}
	version := l.version.Add(1)
	ack := Ack{Op: op, Database: t.Database, Collection: t.Collection, KeyType: "int64", Version: version}
	if t.pk.GetDataType() == schemapb.DataType_VarChar {
		ack.KeyType = "varchar"
	}
	var res interface {
		GetTimestamp() uint64
		GetIDs() *schemapb.IDs
	}
	var send func() error
	switch op {
	case "insert":
		keys := milvus.Keys{}
		if !t.pk.GetAutoID() {
			for i := 0; i < l.cfg.Batch; i++ {
				n := l.seq.Add(1)
				if ack.KeyType == "varchar" {
					keys.Strs = append(keys.Strs, fmt.Sprintf("load-%d-%d", l.run, n))
				} else {
					keys.Ints = append(keys.Ints, 1<<50+l.run*1_000_000_000+n)
				}
			}
		}
		n := l.cfg.Batch
		ack.Keys = keys.Strings()
		rows := gen.Columns(n, keys, func(int) int64 { return version })
		send = func() (err error) { res, err = l.c.Insert(ctx, t.Database, t.Collection, "", rows, n); return }
	case "upsert":
		keys := oneKey(live[0])
		ack.Keys = keys.Strings()
		rows := gen.Columns(1, keys, func(int) int64 { return version })
		send = func() (err error) { res, err = l.c.Upsert(ctx, t.Database, t.Collection, "", rows, 1); return }
	case "delete":
		ack.Keys = live[0].Strings()
		expr := live[0].InExpr(t.pk.GetName())
		send = func() (err error) { res, err = l.c.Delete(ctx, t.Database, t.Collection, "", expr); return }
	}
	err := send()
	if err != nil && l.cfg.Retry && status.Code(err) == codes.Unavailable {
		l.mu.Lock()
		l.stats.Retried++
		l.mu.Unlock()
		select {
		case <-time.After(retryWait):
		case <-ctx.Done():
		}
		err = send()
	}
	if err != nil {
		ack.Unsure, ack.At, ack.Err = true, time.Now(), err.Error()
		return ack, err
	}
	if op != "delete" {
		ack.Keys = milvus.KeysOfIDs(res.GetIDs()).Strings()
	}
	ack.Timestamp, ack.At = res.GetTimestamp(), time.Now()
	return ack, nil
}

// oneKey is the first key of a batch (upserts touch one row).
func oneKey(k milvus.Keys) milvus.Keys {
	if len(k.Strs) > 0 {
		return milvus.Keys{Strs: k.Strs[:1]}
	}
	return milvus.Keys{Ints: k.Ints[:1]}
}

func keysOfAck(a Ack) milvus.Keys { return milvus.KeysFromStrings(a.KeyType, a.Keys) }

func (l *loader) record(ack Ack, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.stats.Failed++
		l.stats.LastErr = err.Error()
		// A failed call may still have been applied: the check accepts
		// either outcome for its keys (keys the server assigns are unknown).
		if len(ack.Keys) > 0 {
			_ = l.journal.Encode(ack)
		}
		return
	}
	if !l.lastAck.IsZero() {
		l.stats.MaxGap = max(l.stats.MaxGap, ack.At.Sub(l.lastAck))
	}
	l.lastAck = ack.At
	l.stats.Acknowledged++
	_ = l.journal.Encode(ack)
}
