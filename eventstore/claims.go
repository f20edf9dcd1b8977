package eventstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ClaimsBucket remembers every claim ever taken, so that a later holder
// of a piece of work knows whether someone may have begun it.
const ClaimsBucket = "ZDM_CLAIMS_BEGUN"

// Claims hands pieces of shared work (the ranges of a copy) to one holder
// at a time among several zdmd. A claim is a lease of LeaseBucket, kept
// alive while its holder works: a holder that dies or stalls loses it one
// lease TTL later, and another may take the work over.
type Claims struct {
	store  *Store
	leases jetstream.KeyValue // LeaseBucket, opened once
	holder string
	ttl    time.Duration
	begun  *KV
	logger *slog.Logger
}

// Claims opens the claims of holder; ttl must be the lease TTL every
// holder uses.
func (s *Store) Claims(ctx context.Context, holder string, ttl time.Duration, logger *slog.Logger) (*Claims, error) {
	leases, err := s.leaseBucket(ctx, ttl)
	if err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	begun, err := s.KV(ctx, ClaimsBucket)
	if err != nil {
		return nil, err
	}
	return &Claims{store: s, leases: leases, holder: holder, ttl: ttl, begun: begun, logger: logger}, nil
}

// Claim takes the claim on work if nobody holds it. ok is false when
// someone does. Otherwise held lasts while the claim is kept (it ends with
// the claim's loss or ctx), release gives the claim up and waits until it
// is given, and first reports that nobody had ever claimed work before:
// nothing of it can have been done.
func (c *Claims) Claim(ctx context.Context, work string) (held context.Context, release func(), first, ok bool, err error) {
	sum := sha256.Sum256([]byte(work))
	key := "claim." + hex.EncodeToString(sum[:16])
	lease := c.store.leaseIn(c.leases, key, c.holder, c.ttl, c.logger)
	term, ok, err := lease.TryAcquire(ctx)
	if err != nil || !ok {
		return nil, nil, false, false, err
	}
	hctx, cancel := context.WithCancelCause(ctx)
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		err := lease.Keep(hctx, term)
		if err == nil {
			err = context.Canceled
		}
		cancel(fmt.Errorf("claim on %s: %w", work, err))
	}()
	release = func() {
		cancel(nil)
		<-kept
	}
	switch err := c.begun.Create(ctx, key, []byte(c.holder)); {
	case err == nil:
		first = true
	case !errors.Is(err, ErrKeyExists):
		release()
		return nil, nil, false, false, err
	}
	return hctx, release, first, true, nil
}
