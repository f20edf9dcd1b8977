package service

import (
	"context"
	"errors"
	"time"

	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/handlers"
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

// lagObservers hands every lag sample to each of them.
type lagObservers []handlers.LagObserver

func (o lagObservers) ObserveLag(ctx context.Context, id string, at time.Time, seconds float64) {
	for _, x := range o {
		x.ObserveLag(ctx, id, at, seconds)
	}
}
