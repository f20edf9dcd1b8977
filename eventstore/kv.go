package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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

// Matching returns the keys filter matches (NATS subject wildcards), with
// their values.
func (k *KV) Matching(ctx context.Context, filter string) (map[string][]byte, error) {
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
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("watch %s: the watcher stopped", k.bucket)
			}
			if e != nil {
				fn(e.Key(), e.Value())
			}
		}
	}
}
