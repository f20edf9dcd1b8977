package eventstore

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	zdm "github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/domain"
)

// What a JetStream cluster answers while it elects leaders is "try again",
// not a fault: the API answers 503 and its commands wait it out. What the
// caller's own context ended is not NATS's doing.
func TestAnElectingClusterIsUnavailableNotBroken(t *testing.T) {
	srv, err := StartEmbedded(EmbeddedConfig{Config: zdm.NATSConfig, DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	live := context.Background()
	ended, cancel := context.WithCancel(live)
	cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"temporarily unavailable", live, &jetstream.APIError{Code: 503, ErrorCode: 10008}, true},
		{"not leader", live, &jetstream.APIError{Code: 500, ErrorCode: 10009}, true},
		{"stream offline", live, &jetstream.APIError{Code: 500, ErrorCode: 10118}, true},
		{"the first try still being stored", live, &jetstream.APIError{Code: 409, ErrorCode: 10158}, true},
		{"store full", live, &jetstream.APIError{Code: 500, ErrorCode: codeStorageExceeded}, true},
		{"no stream answered", live, fmt.Errorf("publish: %w", jetstream.ErrNoStreamResponse), true},
		{"library's request timeout", live, fmt.Errorf("get: %w", context.DeadlineExceeded), true},
		{"nats timeout", live, nats.ErrTimeout, true},
		{"the caller gave up", ended, fmt.Errorf("get: %w", context.Canceled), false},
		{"the caller's deadline", ended, fmt.Errorf("get: %w", context.DeadlineExceeded), false},
		{"wrong last sequence", live, &jetstream.APIError{Code: 400, ErrorCode: 10071}, false},
		{"a fault of our own", live, errors.New("bad subject"), false},
	} {
		got := errors.Is(unavailable(c.ctx, nc, c.err), domain.ErrStoreUnavailable)
		if got != c.want {
			t.Errorf("%s: unavailable = %v, want %v", c.name, got, c.want)
		}
	}
}
