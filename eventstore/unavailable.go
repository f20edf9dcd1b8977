package eventstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zdm-io/zdm/domain"
)

// The NATS server's codes for a store without room: its max_file_store
// (or the account's limit) is reached.
const (
	codeInsufficientResources jetstream.ErrorCode = 10023
	codeStorageExceeded       jetstream.ErrorCode = 10047
)

// codeDuplicateInProcess answers a message whose ID another message,
// still being stored, carries.
const codeDuplicateInProcess jetstream.ErrorCode = 10158

// The NATS server's codes for a cluster between leaders: a node was lost
// and its streams elect new ones, which takes seconds.
var electing = map[jetstream.ErrorCode]bool{
	10007: true, // JetStream cluster not assigned to this server
	10008: true, // JetStream system temporarily unavailable
	10009: true, // JetStream cluster can not handle request
	10118: true, // stream is offline
	10119: true, // consumer is offline
	10194: true, // stream is offline: reason
	10195: true, // consumer is offline: reason
}

// unavailable marks err as ErrStoreUnavailable when it comes from a NATS
// that is out of reach, out of room or electing leaders, so that callers
// can tell "try again when NATS is back" from a fault of their own. ctx is
// the caller's: its own end is not NATS's fault.
func unavailable(ctx context.Context, nc *nats.Conn, err error) error {
	if err == nil || errors.Is(err, domain.ErrStoreUnavailable) || ctx.Err() != nil {
		return err
	}
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && (apiErr.ErrorCode == codeInsufficientResources || apiErr.ErrorCode == codeStorageExceeded):
		return fmt.Errorf("%w: %w", domain.ErrStoreFull, err)
	case errors.As(err, &apiErr) && electing[apiErr.ErrorCode]:
		return fmt.Errorf("%w (NATS is electing a leader): %w", domain.ErrStoreUnavailable, err)
	case errors.As(err, &apiErr) && apiErr.ErrorCode == codeDuplicateInProcess:
		// A retry met its first try, whose answer was lost, still being
		// stored: the next retry finds it stored.
		return fmt.Errorf("%w (an earlier try is still being stored): %w", domain.ErrStoreUnavailable, err)
	case !nc.IsConnected(), errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrConnectionClosed):
		return fmt.Errorf("%w (NATS is unreachable): %w", domain.ErrStoreUnavailable, err)
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, jetstream.ErrNoHeartbeat),
		errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		// The caller's context is alive, so the deadline was the client
		// library's own: no node answered in time.
		return fmt.Errorf("%w (NATS did not answer in time): %w", domain.ErrStoreUnavailable, err)
	}
	return err
}
