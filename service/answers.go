package service

import (
	"context"
	"errors"

	"github.com/zdm-io/zdm/eventstore"
)

// answers keeps the API's first answers to idempotent commands in a
// JetStream bucket, so that they survive a restart of zdmd.
type answers struct{ kv *eventstore.KV }

func (a answers) Claim(ctx context.Context, key string, value []byte) (bool, error) {
	err := a.kv.Create(ctx, key, value)
	if errors.Is(err, eventstore.ErrKeyExists) {
		return false, nil
	}
	return err == nil, err
}

func (a answers) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := a.kv.Get(ctx, key)
	if errors.Is(err, eventstore.ErrKeyNotFound) {
		return nil, nil
	}
	return v, err
}

func (a answers) Put(ctx context.Context, key string, value []byte) error {
	return a.kv.Put(ctx, key, value)
}

func (a answers) Delete(ctx context.Context, key string) error { return a.kv.Delete(ctx, key) }
