package service

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	zdm "github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/eventstore"
)

// OpenEvents connects to NATS (embedded on dataDir unless natsURL is set)
// and opens the event store.
func OpenEvents(ctx context.Context, cfg Config, listen string) (*eventstore.Embedded, *nats.Conn, *eventstore.Store, error) {
	var (
		emb *eventstore.Embedded
		nc  *nats.Conn
		err error
	)
	if cfg.NATSURL == "" {
		conf := zdm.NATSConfig
		if cfg.NATSConfig != "" {
			data, err := os.ReadFile(cfg.NATSConfig)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("--nats-config: %w", err)
			}
			conf = string(data)
		}
		emb, err = eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: conf, DataDir: cfg.DataDir, Listen: listen})
		if err != nil {
			return nil, nil, nil, err
		}
	}
	if nc, err = connectNATS(emb, cfg, "zdmd"); err != nil {
		if emb != nil {
			emb.Close()
		}
		return nil, nil, nil, err
	}
	store, err := eventstore.OpenReplicated(ctx, nc, cfg.NATSReplicas)
	if err != nil {
		nc.Close()
		if emb != nil {
			emb.Close()
		}
		return nil, nil, nil, err
	}
	return emb, nc, store, nil
}

// natsPing is how often a connection to an external NATS asks its server
// whether it is there.
const natsPing = 2 * time.Second

// connectNATS opens a connection named name to the embedded server emb,
// or else to the servers of cfg's nats_url, with its TLS.
func connectNATS(emb *eventstore.Embedded, cfg Config, name string) (*nats.Conn, error) {
	if emb != nil {
		return emb.Connect(name)
	}
	secure, err := natsOptions(cfg.NATSTLS)
	if err != nil {
		return nil, err
	}
	// On a cluster, a lost node is left for another at once; one that
	// hangs (its process stopped, a network that drops its packets: the
	// connection stays open) within about 8 s, once pings sent every 2 s
	// go unanswered, where the client's defaults waited minutes and every
	// journal entry and command of this zdmd failed meanwhile.
	nc, err := nats.Connect(cfg.NATSURL, append(secure, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
		nats.PingInterval(natsPing), nats.MaxPingsOutstanding(2))...)
	if err != nil {
		return nil, fmt.Errorf("--nats-url %s: %w", withoutPasswords(cfg.NATSURL), err)
	}
	return nc, nil
}

func (m *Main) natsWhere() string {
	if m.embedded != nil {
		if u := m.embedded.ClientURL(); u != "" {
			return "embedded at " + u
		}
		return "embedded"
	}
	return withoutPasswords(m.cfg.NATSURL)
}
