package service

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/zdm-io/zdm/dataplane/capture"
)

// endpoints serves, for as long as the process runs, a Milvus endpoint for
// every registered cluster with a proxy_listen address. While this zdmd
// drives the migrations its term's capture proxies serve them (proxies);
// otherwise they relay every call to the zdmd that drives.
type endpoints struct {
	m        *Main
	hostname string // advertised for endpoints listening on every address

	mu      sync.Mutex
	running map[string]*runningEndpoint
	failed  map[string]string // cluster -> address it could not listen on, said once
	changed chan struct{}     // closed when running changes
}

type runningEndpoint struct {
	listen string
	ep     *capture.Endpoint
	done   chan struct{}
}

func newEndpoints(m *Main) *endpoints {
	hostname, _ := os.Hostname()
	return &endpoints{m: m, hostname: hostname, running: map[string]*runningEndpoint{}, failed: map[string]string{}, changed: make(chan struct{})}
}

// run keeps the endpoints in line with the registry until ctx ends, then
// stops them once stopped is closed (the term gave its calls back).
func (es *endpoints) run(ctx context.Context, stopped <-chan struct{}) {
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		changed := es.m.clusters.Changed()
		es.reconcile()
		select {
		case <-ctx.Done():
			<-stopped
			es.stopAll()
			return
		case <-changed:
		case <-retry.C: // a listen that failed is tried again
		}
	}
}

// snapshot returns the endpoints by cluster, and a channel closed when
// they change.
func (es *endpoints) snapshot() (map[string]*capture.Endpoint, <-chan struct{}) {
	es.mu.Lock()
	defer es.mu.Unlock()
	out := make(map[string]*capture.Endpoint, len(es.running))
	for id, re := range es.running {
		out[id] = re.ep
	}
	return out, es.changed
}

// advertised is where the others reach this zdmd's endpoints, by cluster.
func (es *endpoints) advertised() map[string]string {
	es.mu.Lock()
	defer es.mu.Unlock()
	out := make(map[string]string, len(es.running))
	for id, re := range es.running {
		host, port, err := net.SplitHostPort(re.listen)
		if err != nil {
			continue
		}
		switch {
		case es.m.cfg.HA.AdvertiseHost != "":
			host = es.m.cfg.HA.AdvertiseHost
		case host == "" || net.ParseIP(host).IsUnspecified():
			host = es.hostname // listening on every address
		}
		out[id] = net.JoinHostPort(host, port)
	}
	return out
}

func (es *endpoints) reconcile() {
	want := map[string]string{}
	for _, v := range es.m.clusters.List() {
		if v.ProxyListen != "" && !v.Deleted {
			want[v.ID] = shiftPort(v.ProxyListen, es.m.cfg.ProxyPortOffset)
		}
	}
	es.mu.Lock()
	defer es.mu.Unlock()
	before := len(es.running)
	gone := 0
	for id, re := range es.running {
		if want[id] != re.listen {
			re.ep.Stop()
			<-re.done
			delete(es.running, id)
			gone++
		}
	}
	for id, listen := range want {
		if _, ok := es.running[id]; ok {
			continue
		}
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			if es.failed[id] != listen {
				es.m.logger.Error("proxy cannot listen; retrying every second", "cluster", id, "proxy_listen", listen, "err", err)
				es.failed[id] = listen
			}
			continue
		}
		delete(es.failed, id)
		clusterID := id
		ep := capture.NewEndpoint(clusterID, func() string { return es.m.drivingEndpoint(clusterID) }, es.m.logger.With("proxy", clusterID))
		re := &runningEndpoint{listen: listen, ep: ep, done: make(chan struct{})}
		es.running[id] = re
		go func() {
			defer close(re.done)
			if err := ep.Serve(ln); err != nil {
				es.m.logger.Error("proxy stopped", "cluster", clusterID, "err", err)
			}
		}()
		es.m.logger.Info("milvus proxy serving", "cluster", id, "listen", listen)
	}
	if gone > 0 || len(es.running) != before {
		close(es.changed)
		es.changed = make(chan struct{})
	}
}

func (es *endpoints) stopAll() {
	es.mu.Lock()
	defer es.mu.Unlock()
	for id, re := range es.running {
		re.ep.Stop()
		<-re.done
		delete(es.running, id)
	}
}

// proxies is one term's capture proxies, one on each endpoint, and the
// capture's heartbeat.
type proxies struct {
	m       *Main
	capture *capture.Capture
	driven  map[string]*drivenEndpoint
}

type drivenEndpoint struct {
	ep    *capture.Endpoint
	proxy *capture.Proxy
}

// run serves the endpoints through the capture until ctx ends, then gives
// them back once their calls are answered.
func (ps *proxies) run(ctx context.Context) {
	heartbeat := time.NewTicker(time.Second)
	defer heartbeat.Stop()
	for {
		eps, changed := ps.m.endpoints.snapshot()
		ps.reconcile(eps)
		select {
		case <-ctx.Done():
			ps.reconcile(nil)
			return
		case <-changed:
		case <-heartbeat.C:
			ps.capture.Heartbeat(ctx)
			ps.capture.SweepIntents(ctx)
		}
	}
}

// reconcile drives the endpoints of eps and gives back the others.
func (ps *proxies) reconcile(eps map[string]*capture.Endpoint) {
	var wg sync.WaitGroup
	for id, d := range ps.driven {
		if eps[id] != d.ep {
			delete(ps.driven, id)
			wg.Go(func() {
				d.ep.Release(stopGrace)
				d.proxy.Stop()
			})
		}
	}
	wg.Wait()
	for id, ep := range eps {
		if _, ok := ps.driven[id]; ok {
			continue
		}
		clusterID := id
		p := capture.NewProxy(clusterID, func() string {
			v, _ := ps.m.clusters.Get(clusterID)
			return v.Endpoint
		}, ps.capture, ps.m.logger.With("proxy", clusterID))
		ep.Drive(p)
		ps.driven[id] = &drivenEndpoint{ep: ep, proxy: p}
	}
}

// stopGrace bounds how long a term that ends waits for its calls: the
// lease is kept meanwhile, and a call whose cluster never answers must not
// keep every other instance from driving.
const stopGrace = 15 * time.Second

func (ps *proxies) String() string { return fmt.Sprintf("%d proxies", len(ps.driven)) }

// shiftPort adds offset to addr's port (addr unchanged if it has none).
func shiftPort(addr string, offset int) string {
	host, port, err := net.SplitHostPort(addr)
	p, perr := strconv.Atoi(port)
	if offset == 0 || err != nil || perr != nil || p+offset > 65535 {
		return addr
	}
	return net.JoinHostPort(host, strconv.Itoa(p+offset))
}
