package milvus

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"
)

// NewBufferPool returns gRPC's tiered buffer pool with a tier at every
// power of two up to 8 MiB. gRPC's default pool jumps from 32 KiB to
// 1 MiB and clears the whole buffer on each Get, so every insert of a few
// dozen KiB (a batch of 100 vectors) cleared 1 MiB: a tenth of the CPU
// the proxy spent per write.
func NewBufferPool() mem.BufferPool {
	var sizes []int
	for s := 256; s <= 8<<20; s *= 2 {
		sizes = append(sizes, s)
	}
	return mem.NewTieredBufferPool(sizes...)
}

// Flow-control windows and socket buffers sized for messages of a few
// MiB (query pages, insert batches): larger windows spare the round trips
// of window updates and bandwidth probes, larger buffers spare syscalls.
const (
	windowSize      = 8 << 20
	transportBuffer = 256 << 10
)

// clientKeepalive has a connection ping a server it heard nothing from
// for 30 s, and close when 10 s more pass without an answer: the calls
// waiting on a Milvus that hangs (its process stopped, a network that
// drops its packets) fail, and are retried or repaired, where they waited
// for ever (the kernel answers TCP's own probes for a stopped process).
// Milvus lets clients ping as often as every 5 s.
func clientKeepalive() keepalive.ClientParameters {
	return keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}
}

// DialOptions tunes a client connection to Milvus.
func DialOptions(pool mem.BufferPool) []grpc.DialOption {
	return dialOptions(pool, clientKeepalive())
}

func dialOptions(pool mem.BufferPool, ka keepalive.ClientParameters) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithKeepaliveParams(ka),
		experimental.WithBufferPool(pool),
		grpc.WithInitialWindowSize(windowSize),
		grpc.WithInitialConnWindowSize(windowSize),
		grpc.WithWriteBufferSize(transportBuffer),
		grpc.WithReadBufferSize(transportBuffer),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessage), grpc.MaxCallSendMsgSize(MaxMessage)),
	}
}

// ServerOptions tunes the proxy's server side alike, and lets clients
// ping as Milvus's own server does: as often as every 5 s, with or
// without calls (the SDKs ping idle connections every 10-55 s, and gRPC's
// default closes such a connection after three pings, failing its calls),
// and pings a client idle for a minute to find it gone.
func ServerOptions(pool mem.BufferPool) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 10 * time.Second}),
		experimental.BufferPool(pool),
		grpc.InitialWindowSize(windowSize),
		grpc.InitialConnWindowSize(windowSize),
		grpc.WriteBufferSize(transportBuffer),
		grpc.ReadBufferSize(transportBuffer),
		grpc.MaxRecvMsgSize(MaxMessage), grpc.MaxSendMsgSize(MaxMessage),
	}
}
