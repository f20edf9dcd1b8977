package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
)

// ErrKeyNotFound means a key-value bucket has no such key.
var ErrKeyNotFound = errors.New("key not found")

// ErrKeyExists means Create found the key there already.
var ErrKeyExists = errors.New("key exists")

// KV is a JetStream key-value bucket holding the latest value of each key.
type KV struct {
	js       jetstream.JetStream
	bucket   string
	ttl      time.Duration
	replicas int
	kv       jetstream.KeyValue
	// On a cluster: the bucket's stream, for its leader's list of keys,
	// and reads its leader answers.
	stream jetstream.Stream
	leader nats.JetStreamContext
}

// KV opens (creating if needed) a file-backed bucket.
func (s *Store) KV(ctx context.Context, bucket string) (*KV, error) {
	return s.ExpiringKV(ctx, bucket, 0)
}

// ExpiringKV is KV whose values are removed ttl after they were written
// (0: kept).
func (s *Store) ExpiringKV(ctx context.Context, bucket string, ttl time.Duration) (*KV, error) {
	k := &KV{js: s.js, bucket: bucket, ttl: ttl, replicas: s.replicas}
	if err := k.open(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *KV) open(ctx context.Context) error {
	kv, err := ensureKV(ctx, k.js, jetstream.KeyValueConfig{
		Bucket: k.bucket, History: 1, Storage: jetstream.FileStorage, TTL: k.ttl, Replicas: k.replicas,
	})
	if err != nil {
		return fmt.Errorf("open bucket %s: %w", k.bucket, err)
	}
	k.kv = kv
	if k.replicas <= 1 {
		return nil // Matching watches: only a cluster's reads ask the leader
	}
	if k.stream, err = k.js.Stream(ctx, "KV_"+k.bucket); err != nil {
		return fmt.Errorf("open bucket %s: %w", k.bucket, err)
	}
	if k.leader, err = k.js.Conn().JetStream(); err != nil {
		return fmt.Errorf("open bucket %s: %w", k.bucket, err)
	}
	return nil
}

// ensureKV is ensureStream for a bucket, tried as create tries.
func ensureKV(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := create(ctx, func(ctx context.Context) error {
		if have, err := js.KeyValue(ctx, cfg.Bucket); err == nil {
			st, err := have.Status(ctx)
			if bs, ok := st.(*jetstream.KeyValueBucketStatus); err == nil && ok && bs.TTL() == cfg.TTL && bs.StreamInfo().Config.Replicas == cfg.Replicas {
				kv = have
				return nil
			}
		}
		var err error
		kv, err = js.CreateOrUpdateKeyValue(ctx, cfg)
		return err
	})
	return kv, err
}

// Put stores value under key.
func (k *KV) Put(ctx context.Context, key string, value []byte) error {
	if _, err := k.kv.Put(ctx, key, value); err != nil {
		return fmt.Errorf("put %s/%s: %w", k.bucket, key, unavailable(ctx, k.js.Conn(), err))
	}
	return nil
}

// Create stores value under key if the key holds nothing, else it is
// ErrKeyExists: of several writers racing, one wins.
func (k *KV) Create(ctx context.Context, key string, value []byte) error {
	_, err := k.kv.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return ErrKeyExists
	}
	if err != nil {
		return fmt.Errorf("create %s/%s: %w", k.bucket, key, unavailable(ctx, k.js.Conn(), err))
	}
	return nil
}

// Get returns the value of key, or ErrKeyNotFound.
func (k *KV) Get(ctx context.Context, key string) ([]byte, error) {
	e, err := k.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, ErrKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get %s/%s: %w", k.bucket, key, unavailable(ctx, k.js.Conn(), err))
	}
	return e.Value(), nil
}

// Delete removes key; removing a missing key is not an error.
func (k *KV) Delete(ctx context.Context, key string) error {
	if err := k.kv.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete %s/%s: %w", k.bucket, key, unavailable(ctx, k.js.Conn(), err))
	}
	return nil
}

// All returns every key and its value.
func (k *KV) All(ctx context.Context) (map[string][]byte, error) { return k.Matching(ctx, ">") }

// matchingParallel bounds the keys Matching reads at once.
const matchingParallel = 16

// Matching returns the keys filter matches (NATS subject wildcards), with
// their values, as the bucket holds them: what zdm decides from them (the
// writes a dead zdmd left, the repairs to make again at the switch) must
// not miss one. A watch reads through a consumer the cluster places on
// any member of the bucket, a member restarted after losing its disk too,
// which answers from what it has caught up with so far: keys missing,
// deleted ones still there. On a cluster the bucket's leader lists the
// keys and each is read from it.
func (k *KV) Matching(ctx context.Context, filter string) (map[string][]byte, error) {
	if k.replicas <= 1 {
		return k.watched(ctx, filter)
	}
	prefix := "$KV." + k.bucket + "."
	info, err := leaderInfo(ctx, k.js.Conn(), k.stream, jetstream.WithSubjectFilter(prefix+filter))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k.bucket, err)
	}
	var mu sync.Mutex
	out := make(map[string][]byte, len(info.State.Subjects))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(matchingParallel)
	for subj := range info.State.Subjects {
		g.Go(func() error {
			m, err := k.lastFromLeader(gctx, subj)
			switch {
			case errors.Is(err, nats.ErrMsgNotFound):
				return nil // removed since it was listed
			case err != nil:
				return fmt.Errorf("read %s: %w", subj, unavailable(ctx, k.js.Conn(), err))
			}
			if op := m.Header.Get(kvOperation); op == "DEL" || op == "PURGE" {
				return nil
			}
			mu.Lock()
			out[strings.TrimPrefix(subj, prefix)] = m.Data
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("read %s: %w", k.bucket, err)
	}
	return out, nil
}

// lastFromLeader reads a subject's last message as the bucket's leader
// holds it: not a direct get, which any member that is nearly caught up
// answers.
func (k *KV) lastFromLeader(ctx context.Context, subj string) (*nats.RawStreamMsg, error) {
	var m *nats.RawStreamMsg
	err := askLeader(ctx, func(actx context.Context) (err error) {
		m, err = k.leader.GetLastMsg("KV_"+k.bucket, subj, nats.Context(actx))
		return err
	})
	return m, err
}

// kvOperation is the header that marks a deleted or purged key.
const kvOperation = "KV-Operation"

// watched is Matching through a watch: exact on a single server.
func (k *KV) watched(ctx context.Context, filter string) (map[string][]byte, error) {
	w, err := k.kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k.bucket, unavailable(ctx, k.js.Conn(), err))
	}
	defer func() { _ = w.Stop() }()
	out := map[string][]byte{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e := <-w.Updates():
			if e == nil { // the initial values are all delivered
				return out, nil
			}
			out[e.Key()] = e.Value()
		}
	}
}

// Reset empties the bucket.
func (k *KV) Reset(ctx context.Context) error {
	if err := k.js.DeleteKeyValue(ctx, k.bucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("reset %s: %w", k.bucket, err)
	}
	return k.open(ctx)
}

// Watch calls fn with every value written to the bucket from now on, in
// order, until ctx ends.
func (k *KV) Watch(ctx context.Context, fn func(key string, value []byte)) error {
	w, err := k.kv.WatchAll(ctx, jetstream.IgnoreDeletes(), jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("watch %s: %w", k.bucket, err)
	}
	if err := each(ctx, w, func(e jetstream.KeyValueEntry) { fn(e.Key(), e.Value()) }); err != nil {
		return fmt.Errorf("watch %s: %w", k.bucket, err)
	}
	return nil
}
