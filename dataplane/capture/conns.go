package capture

import (
	"crypto/tls"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"

	"github.com/zdm-io/zdm/dataplane/milvus"
)

// conns keeps one client connection per address a proxy or an endpoint
// forwards to, with its server side's buffer pool.
type conns struct {
	pool  mem.BufferPool
	extra []grpc.DialOption
	// secure gives the TLS of calls to an address (nil: plain text).
	secure func(addr string) (*tls.Config, error)

	mu sync.Mutex
	by map[string]*grpc.ClientConn
}

func newConns(pool mem.BufferPool, extra ...grpc.DialOption) *conns {
	return &conns{pool: pool, extra: extra, by: map[string]*grpc.ClientConn{}}
}

// get returns the connection to addr, made on first use.
func (c *conns) get(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.by[addr]; ok {
		return cc, nil
	}
	var cfg *tls.Config
	if c.secure != nil {
		var err error
		if cfg, err = c.secure(addr); err != nil {
			return nil, fmt.Errorf("tls of %s: %w", addr, err)
		}
	}
	opts := append(milvus.DialOptions(c.pool), milvus.Transport(cfg))
	cc, err := grpc.NewClient(addr, append(opts, c.extra...)...)
	if err != nil {
		return nil, err
	}
	c.by[addr] = cc
	return cc, nil
}

// close closes every connection.
func (c *conns) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, cc := range c.by {
		cc.Close()
		delete(c.by, addr)
	}
}

// secureWith makes the connections made from now on use the TLS that
// secure gives for their address.
func (c *conns) secureWith(secure func(addr string) (*tls.Config, error)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.secure = secure
}
