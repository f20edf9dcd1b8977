package eventstore

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zdm-io/zdm/domain"
)

// fromLeader reports whether a stream's information was given by its
// leader. On a cluster, a stream's members answer too while it has no
// leader, and a member restarted after losing its disk answers for a few
// seconds while it catches up: with its own state, which may miss
// subjects and messages. Whoever answers leaves itself out of the
// replicas, so a leader named among them means a follower answered.
func fromLeader(info *jetstream.StreamInfo) bool {
	c := info.Cluster
	if c == nil || info.Config.Replicas <= 1 {
		return true
	}
	if c.Leader == "" {
		return false
	}
	for _, r := range c.Replicas {
		if r.Name == c.Leader {
			return false
		}
	}
	return true
}

// leaderInfoTries bounds how often leaderInfo asks again: the client
// takes the first answer, and the leader's may come second.
const leaderInfoTries = 10

// leaderInfo is the stream's information as its leader gives it: what
// zdm decides from a list of subjects (the migrations to capture, the
// journal's last entry) must not come from a member that is behind.
func leaderInfo(ctx context.Context, nc *nats.Conn, stream jetstream.Stream, opts ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	for try := 1; ; try++ {
		info, err := stream.Info(ctx, opts...)
		if err != nil {
			return nil, unavailable(ctx, nc, err)
		}
		if fromLeader(info) {
			return info, nil
		}
		if try == leaderInfoTries {
			return nil, fmt.Errorf("%w (stream %s: no leader answered; its members may be behind)", domain.ErrStoreUnavailable, info.Config.Name)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(try) * 50 * time.Millisecond):
		}
	}
}
