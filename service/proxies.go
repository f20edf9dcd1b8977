package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/restgate"
	"github.com/zdm-io/zdm/domain"
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
	failed  map[string]listen // cluster -> how it could not listen, said once
	// contended names, by cluster, the one registered before it that has
	// its proxy address (said once).
	contended map[string]string
	// problems says, by cluster, why its proxy does not serve here.
	problems map[string]string
	changed  chan struct{} // closed when running changes
}

type runningEndpoint struct {
	listen
	ep    *capture.Endpoint
	certs *capture.ServerCerts // nil in plain text
	done  chan struct{}
}

// listen is how an endpoint listens: where, and with the proxy TLS of
// which cluster event (0: plain text).
type listen struct {
	addr   string
	tlsSeq uint64
}

func newEndpoints(m *Main) *endpoints {
	hostname, _ := os.Hostname()
	return &endpoints{m: m, hostname: hostname, running: map[string]*runningEndpoint{}, failed: map[string]listen{}, changed: make(chan struct{})}
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

// nudge wakes the calls each endpoint holds for an instance to drive.
func (es *endpoints) nudge() {
	eps, _ := es.snapshot()
	for _, ep := range eps {
		ep.Nudge()
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

// proxyProblems says, by cluster, why its proxy does not serve on this
// zdmd.
func (m *Main) proxyProblems() map[string]string {
	if m.endpoints == nil {
		return nil // the simulated data plane has no proxies
	}
	return m.endpoints.proxyProblems()
}

func (es *endpoints) proxyProblems() map[string]string {
	es.mu.Lock()
	defer es.mu.Unlock()
	return maps.Clone(es.problems)
}

// advertised is where the others reach this zdmd's endpoints, by cluster.
func (es *endpoints) advertised() map[string]string {
	es.mu.Lock()
	defer es.mu.Unlock()
	out := make(map[string]string, len(es.running))
	for id, re := range es.running {
		host, port, err := net.SplitHostPort(re.addr)
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
	want := map[string]listen{}
	claims, contended := proxyClaims(es.m.clusters.List())
	for _, v := range claims {
		l := listen{addr: shiftPort(v.ProxyListen, es.m.cfg.ProxyPortOffset)}
		if v.ProxyTLS != "" {
			l.tlsSeq = v.State.ProxyTLSSeq
		}
		want[v.ID] = l
	}
	es.mu.Lock()
	defer es.mu.Unlock()
	for id, holder := range contended {
		if es.contended[id] != holder {
			es.m.logger.Error("no proxy for this cluster: its proxy_listen is that of a cluster registered before it; give it a port of its own (PATCH proxy_listen)",
				"cluster", id, "proxy_listen_of", holder)
		}
	}
	es.contended = contended
	problems := map[string]string{}
	for id := range contended {
		// Not named: the cluster holding it may be another organization's.
		problems[id] = "no proxy: its proxy_listen is that of a cluster registered before it; give it a port of its own"
	}
	defer func() { es.problems = problems }()
	before := len(es.running)
	gone := 0
	for id, re := range es.running {
		if w := want[id]; w != re.listen && w.addr == re.addr && w.tlsSeq != 0 && re.certs != nil {
			// A new certificate: the next handshakes take it, and the
			// applications' connections stay.
			err := es.rotate(id, re, w)
			if err == nil {
				continue
			}
			es.m.logger.Error("the proxy's new certificate could not be taken in place; restarting its listener", "cluster", id, "err", err)
		}
		if want[id] != re.listen {
			// Said, as its applications lose this address until it is
			// served again: the proxy moved, stopped, or turned TLS on
			// or off.
			es.m.logger.Info("milvus proxy stopping", "cluster", id, "listen", re.addr, "now", want[id].addr)
			re.ep.Stop()
			<-re.done
			delete(es.running, id)
			gone++
		}
	}
	for id, l := range want {
		if _, ok := es.running[id]; ok {
			continue
		}
		clusterID := id
		ep := capture.NewEndpoint(clusterID, func() string { return es.m.drivingEndpoint(clusterID) }, es.m.logger.With("proxy", clusterID))
		ep.LookAgainWhenSentBack(func() {
			es.m.driving.lookAgain()
			es.m.metrics.RelaySentBack()
		})
		ep.CountRefusals(es.m.metrics.Refused)
		ep.CountLostRelays(es.m.metrics.RelayLost)
		ep.CarryREST(restgate.New)
		ln, certs, err := es.listen(id, l, ep)
		if err != nil {
			if es.failed[id] != l {
				es.m.logger.Error("proxy cannot listen; retrying every second", "cluster", id, "proxy_listen", l.addr, "err", err)
				es.failed[id] = l
			}
			problems[id] = fmt.Sprintf("the proxy cannot listen on %s (tried again every second): %v", l.addr, err)
			continue
		}
		delete(es.failed, id)
		re := &runningEndpoint{listen: l, ep: ep, certs: certs, done: make(chan struct{})}
		es.running[id] = re
		go func() {
			defer close(re.done)
			if err := ep.Serve(ln); err != nil {
				es.m.logger.Error("proxy stopped", "cluster", clusterID, "err", err)
			}
		}()
		es.m.logger.Info("milvus proxy serving", "cluster", id, "listen", l.addr, "tls", l.tlsSeq != 0)
	}
	if gone > 0 || len(es.running) != before {
		close(es.changed)
		es.changed = make(chan struct{})
	}
}

// listen opens l for a cluster's endpoint ep, with the cluster's proxy
// TLS if it has one (certs, nil in plain text).
func (es *endpoints) listen(clusterID string, l listen, ep *capture.Endpoint) (net.Listener, *capture.ServerCerts, error) {
	var certs *capture.ServerCerts
	if l.tlsSeq != 0 {
		t, err := es.proxyTLS(clusterID)
		if err != nil {
			return nil, nil, err
		}
		if certs, err = capture.NewServerCerts(*t); err != nil {
			return nil, nil, err
		}
		ep.RelayWith(certs)
	}
	ln, err := net.Listen("tcp", l.addr)
	if err != nil || certs == nil {
		return ln, nil, err
	}
	return certs.Listener(ln), certs, nil
}

// rotate gives a running endpoint the proxy TLS of w, in place.
func (es *endpoints) rotate(clusterID string, re *runningEndpoint, w listen) error {
	t, err := es.proxyTLS(clusterID)
	if err != nil {
		return err
	}
	if err := re.certs.Rotate(*t); err != nil {
		return err
	}
	re.listen = w
	es.m.logger.Info("milvus proxy serving with a new certificate; connections made before keep theirs", "cluster", clusterID, "listen", w.addr)
	return nil
}

// proxyTLS reads a cluster's proxy TLS from the credential store.
func (es *endpoints) proxyTLS(clusterID string) (*domain.ServerTLS, error) {
	ctx, cancel := context.WithTimeout(es.m.baseCtx, 5*time.Second)
	defer cancel()
	creds, err := es.m.service.ClusterCredentials(ctx, clusterID)
	if err != nil {
		return nil, fmt.Errorf("proxy_tls: %w", err)
	}
	if creds.ProxyTLS == nil {
		return nil, errors.New("proxy_tls: the cluster's certificate is not in the credential store")
	}
	return creds.ProxyTLS, nil
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
			// The writes answered last still journal their outcomes; left
			// undone, the next term would repair them from the source.
			settle, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopGrace)
			ps.capture.Settle(settle)
			cancel()
			return
		case <-changed:
		case <-heartbeat.C:
			ps.capture.Heartbeat(ctx)
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
		p.SecureUpstream(ps.m.upstreamTLS)
		p.GuardTarget((&claim{clusters: ps.m.clusters, id: clusterID}).by)
		p.CountRefusals(ps.m.metrics.Refused)
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

// upstreamTLS is the TLS of a proxy's calls to addr: that of the cluster
// registered there (a source, or the target a switch routed it to).
func (m *Main) upstreamTLS(addr string) (*tls.Config, error) {
	for _, v := range m.clusters.List() {
		if v.Deleted || v.Endpoint != addr || v.TLS == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(m.baseCtx, 5*time.Second)
		defer cancel()
		creds, err := m.service.ClusterCredentials(ctx, v.ID)
		if err != nil {
			return nil, fmt.Errorf("tls of cluster %s: %w", v.ID, err)
		}
		if creds.TLS == nil {
			return nil, fmt.Errorf("tls of cluster %s: its certificates are not in the credential store", v.ID)
		}
		return creds.TLS.Config()
	}
	return nil, nil
}
