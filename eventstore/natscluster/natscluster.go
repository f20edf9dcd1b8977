// Package natscluster runs a JetStream cluster of zdm-nats processes on
// this host, configured by the nats-cluster.conf zdm ships (or its TLS
// twin, nats-cluster-tls.conf): the HA tests, make demo-ha and the bench
// use it to kill, wipe and restart real nodes.
package natscluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	zdm "github.com/zdm-io/zdm"
)

// Cluster is a running JetStream cluster.
type Cluster struct {
	Dir   string
	bin   string
	conf  string
	tls   *TLS
	Nodes []*Node
}

// TLS is what a cluster started by StartTLS speaks TLS with.
type TLS struct {
	CA string // signs every certificate below
	// Each node's certificate and key, for its clients and for the other
	// nodes (server and client authentication both).
	Cert, Key string
	// What the cluster's own checks connect with, as a zdmd would.
	ClientCert, ClientKey string
}

// Node is one zdm-nats process of the cluster.
type Node struct {
	Name      string
	ClientURL string
	Store     string
	env       []string
	logPath   string
	mu        sync.Mutex
	cmd       *exec.Cmd
	done      chan struct{}
}

// Binary builds zdm-nats (nats-server at the version go.mod pins, with
// the Raft timings cmd/zdm-nats sets) into the module's .cache, once for
// each version of both, and returns its path.
func Binary(ctx context.Context) (string, error) {
	return build(ctx, "./cmd/zdm-nats", "zdm-nats")
}

// NATSServer builds nats-server itself, as Binary does zdm-nats: the
// baseline zdm-nats is measured against.
func NATSServer(ctx context.Context) (string, error) {
	return build(ctx, "github.com/nats-io/nats-server/v2", "nats-server")
}

func build(ctx context.Context, pkg, name string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	version, err := sourceVersion(root)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, ".cache", "bin", name+"-"+version)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	// Packages tested in parallel may build at once: each builds its own
	// file and renames it into place.
	tmp := fmt.Sprintf("%s.%d", bin, os.Getpid())
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w: %s", name, err, out)
	}
	return bin, os.Rename(tmp, bin)
}

// sourceVersion names what a build is made of: go.sum (the nats-server
// version among the rest) and cmd/zdm-nats's files.
func sourceVersion(root string) (string, error) {
	files, err := filepath.Glob(filepath.Join(root, "cmd", "zdm-nats", "*.go"))
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("find cmd/zdm-nats under %s: %v", root, err)
	}
	h := sha256.New()
	for _, f := range append([]string{filepath.Join(root, "go.sum")}, files...) {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Start runs n nodes under dir, configured by nats-cluster.conf, and
// waits until JetStream answers.
func Start(ctx context.Context, dir string, n int) (*Cluster, error) {
	bin, err := Binary(ctx)
	if err != nil {
		return nil, err
	}
	return StartWith(ctx, bin, dir, n)
}

// StartWith is Start with another server binary (NATSServer's).
func StartWith(ctx context.Context, bin, dir string, n int) (*Cluster, error) {
	return start(ctx, bin, dir, n, nil)
}

// StartTLS is Start with nats-cluster-tls.conf: TLS on the client port and
// the routes, certificates verified both ways.
func StartTLS(ctx context.Context, dir string, n int, tls TLS) (*Cluster, error) {
	bin, err := Binary(ctx)
	if err != nil {
		return nil, err
	}
	return start(ctx, bin, dir, n, &tls)
}

func start(ctx context.Context, bin, dir string, n int, tls *TLS) (*Cluster, error) {
	conf, scheme := zdm.NATSClusterConfig, "nats"
	if tls != nil {
		conf, scheme = zdm.NATSClusterTLSConfig, "tls"
	}
	c := &Cluster{Dir: dir, bin: bin, conf: filepath.Join(dir, "nats-cluster.conf"), tls: tls}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.conf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	ports, err := FreePorts(2 * n)
	if err != nil {
		return nil, err
	}
	routes := make([]string, n)
	for i := range n {
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", ports[n+i])
	}
	for i := range n {
		name := fmt.Sprintf("nats-%d", i+1)
		node := &Node{
			Name:      name,
			ClientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[i]),
			Store:     filepath.Join(dir, name, "jetstream"),
			logPath:   filepath.Join(dir, name+".log"),
		}
		node.env = append(os.Environ(),
			"ZDM_NATS_NAME="+name,
			fmt.Sprintf("ZDM_NATS_LISTEN=127.0.0.1:%d", ports[i]),
			fmt.Sprintf("ZDM_NATS_CLUSTER_LISTEN=127.0.0.1:%d", ports[n+i]),
			"ZDM_NATS_ROUTES=["+strings.Join(routes, ", ")+"]",
			"ZDM_NATS_STORE="+node.Store,
		)
		if tls != nil {
			node.env = append(node.env, "ZDM_NATS_TLS_CERT="+tls.Cert, "ZDM_NATS_TLS_KEY="+tls.Key, "ZDM_NATS_TLS_CA="+tls.CA)
		}
		c.Nodes = append(c.Nodes, node)
	}
	for i := range c.Nodes {
		if err := c.Restart(i); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := c.WaitReady(ctx, time.Minute); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// URLs is every node's client address, comma-separated, as --nats-url
// takes them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.ClientURL
	}
	return strings.Join(urls, ",")
}

// Restart starts node i (again), keeping its store.
func (c *Cluster) Restart(i int) error {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("%s is running", n.Name)
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.bin, "-c", c.conf)
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	n.cmd, n.done = cmd, make(chan struct{})
	go func(done chan struct{}) {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}(n.done)
	return nil
}

// Kill ends node i with SIGKILL and waits until it is gone.
func (c *Cluster) Kill(i int) {
	n := c.Nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
	n.cmd = nil
}

// Wipe removes node i's store, as a lost disk would; the node must be down.
func (c *Cluster) Wipe(i int) error {
	return os.RemoveAll(filepath.Dir(c.Nodes[i].Store))
}

// Stop kills every node.
func (c *Cluster) Stop() {
	for i := range c.Nodes {
		c.Kill(i)
	}
}

// WaitReady waits until the cluster has a JetStream leader and every
// running node takes connections.
func (c *Cluster) WaitReady(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	last := ctx.Err()
	for ctx.Err() == nil {
		if last = c.ready(ctx); last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("nats cluster in %s not ready after %s: %w", c.Dir, within, last)
}

// Options are what a client connects to the cluster with: its TLS files,
// for a cluster started by StartTLS.
func (c *Cluster) Options() []nats.Option {
	if c.tls == nil {
		return nil
	}
	return []nats.Option{nats.RootCAs(c.tls.CA), nats.ClientCert(c.tls.ClientCert, c.tls.ClientKey)}
}

func (c *Cluster) ready(ctx context.Context) error {
	nc, err := nats.Connect(c.URLs(), append(c.Options(), nats.Timeout(time.Second))...)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(actx); err != nil {
		return err
	}
	for _, n := range c.Nodes {
		n.mu.Lock()
		running := n.cmd != nil
		n.mu.Unlock()
		if !running {
			continue
		}
		_, hostPort, _ := strings.Cut(n.ClientURL, "://")
		conn, err := net.DialTimeout("tcp", hostPort, time.Second)
		if err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		conn.Close()
	}
	return nil
}

// FreePorts returns n loopback ports that were free a moment ago: for a
// cluster's nodes, and for any other server a test or demo starts beside
// them.
func FreePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, errors.Join(errors.New("find free ports"), err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// PIDs are the running nodes' process IDs (for the bench's CPU figures).
func (c *Cluster) PIDs() []int {
	var out []int
	for _, n := range c.Nodes {
		n.mu.Lock()
		if n.cmd != nil {
			out = append(out, n.cmd.Process.Pid)
		}
		n.mu.Unlock()
	}
	return out
}
