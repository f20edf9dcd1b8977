package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/retry"
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

// leaderInfoRetry paces the asks of leaderInfo: the client takes the
// first answer, and the leader's may come second.
var leaderInfoRetry = retry.Policy{Attempts: 10, First: 50 * time.Millisecond, Factor: 1.3, Max: 500 * time.Millisecond}

// leaderInfoTry bounds one ask of leaderInfo.
const leaderInfoTry = 2 * time.Second

// errNotLeader is an answer from a member that is not the stream's
// leader.
var errNotLeader = errors.New("not the leader")

// askLeader runs ask under leaderInfoRetry, each try bounded by
// leaderInfoTry: one sent on a connection to a node that has just died is
// never answered, and the next one goes out on the connection to another.
// A try that timed out, or answered errNotLeader, is tried again; any
// other error ends the asks.
func askLeader(ctx context.Context, ask func(context.Context) error) error {
	return leaderInfoRetry.Do(ctx, func(int) error {
		actx, cancel := context.WithTimeout(ctx, leaderInfoTry)
		defer cancel()
		err := ask(actx)
		if err == nil || errors.Is(err, errNotLeader) || (ctx.Err() == nil && actx.Err() != nil) {
			return err
		}
		return retry.Stop(err)
	})
}

// leaderInfo is the stream's information as its leader gives it: what
// zdm decides from a list of subjects (the migrations to capture, the
// journal's last entry) must not come from a member that is behind.
func leaderInfo(ctx context.Context, nc *nats.Conn, stream jetstream.Stream, opts ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	var info *jetstream.StreamInfo
	err := askLeader(ctx, func(actx context.Context) error {
		var err error
		if info, err = stream.Info(actx, opts...); err != nil {
			return err
		}
		if !fromLeader(info) {
			return errNotLeader
		}
		return nil
	})
	switch {
	case errors.Is(err, errNotLeader):
		return nil, fmt.Errorf("%w (stream %s: no leader answered; its members may be behind)", domain.ErrStoreUnavailable, info.Config.Name)
	case err != nil:
		return nil, unavailable(ctx, nc, err)
	}
	return info, nil
}
