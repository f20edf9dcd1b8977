package eventstore

import (
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

// unavailable marks err as ErrStoreUnavailable when it comes from a NATS
// that is out of reach or out of room, so that callers can tell "try
// again when NATS is back" from a fault of their own.
func unavailable(nc *nats.Conn, err error) error {
	if err == nil || errors.Is(err, domain.ErrStoreUnavailable) {
		return err
	}
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && (apiErr.ErrorCode == codeInsufficientResources || apiErr.ErrorCode == codeStorageExceeded):
		return fmt.Errorf("%w (the NATS store is full): %w", domain.ErrStoreUnavailable, err)
	case !nc.IsConnected(), errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrConnectionClosed):
		return fmt.Errorf("%w (NATS is unreachable): %w", domain.ErrStoreUnavailable, err)
	}
	return err
}
