package service

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/zdm-io/zdm/dataplane/capture"
)

// proxies runs a Milvus proxy for every registered cluster with a
// proxy_listen address, and the capture's heartbeat.
type proxies struct {
	m       *Main
	capture *capture.Capture

	mu      sync.Mutex
	running map[string]*runningProxy
	failed  map[string]string // cluster -> address it could not listen on, said once
}

type runningProxy struct {
	listen string
	proxy  *capture.Proxy
	done   chan struct{}
}

// run keeps the proxies in line with the registry until ctx ends.
func (ps *proxies) run(ctx context.Context) {
	heartbeat := time.NewTicker(time.Second)
	defer heartbeat.Stop()
	for {
		changed := ps.m.clusters.Changed()
		ps.reconcile()
		select {
		case <-ctx.Done():
			ps.stopAll()
			return
		case <-changed:
		case <-heartbeat.C:
			ps.capture.Heartbeat(ctx)
			ps.capture.SweepIntents(ctx)
		}
	}
}

func (ps *proxies) reconcile() {
	want := map[string]string{}
	for _, v := range ps.m.clusters.List() {
		if v.ProxyListen != "" && !v.Deleted {
			want[v.ID] = shiftPort(v.ProxyListen, ps.m.cfg.ProxyPortOffset)
		}
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for id, rp := range ps.running {
		if want[id] != rp.listen {
			rp.proxy.Stop()
			<-rp.done
			delete(ps.running, id)
		}
	}
	for id, listen := range want {
		if _, ok := ps.running[id]; ok {
			continue
		}
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			if ps.failed[id] != listen {
				ps.m.logger.Error("proxy cannot listen; retrying every second", "cluster", id, "proxy_listen", listen, "err", err)
				ps.failed[id] = listen
			}
			continue
		}
		delete(ps.failed, id)
		clusterID := id
		p := capture.NewProxy(clusterID, func() string {
			v, _ := ps.m.clusters.Get(clusterID)
			return v.Endpoint
		}, ps.capture, ps.m.logger.With("proxy", clusterID))
		rp := &runningProxy{listen: listen, proxy: p, done: make(chan struct{})}
		ps.running[id] = rp
		go func() {
			defer close(rp.done)
			if err := p.Serve(ln); err != nil {
				ps.m.logger.Error("proxy stopped", "cluster", clusterID, "err", err)
			}
		}()
		ps.m.logger.Info("milvus proxy serving", "cluster", id, "listen", listen)
	}
}

func (ps *proxies) stopAll() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for id, rp := range ps.running {
		rp.proxy.Stop()
		<-rp.done
		delete(ps.running, id)
	}
}

func (ps *proxies) String() string { return fmt.Sprintf("%d proxies", len(ps.running)) }

// shiftPort adds offset to addr's port (addr unchanged if it has none).
func shiftPort(addr string, offset int) string {
	host, port, err := net.SplitHostPort(addr)
	p, perr := strconv.Atoi(port)
	if offset == 0 || err != nil || perr != nil || p+offset > 65535 {
		return addr
	}
	return net.JoinHostPort(host, strconv.Itoa(p+offset))
}
