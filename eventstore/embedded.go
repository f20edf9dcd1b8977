// Package eventstore keeps zdm's events in NATS JetStream: appends with
// optimistic concurrency, replay, durable consumers and key-value buckets.
package eventstore

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Embedded is a NATS server with JetStream running inside this process.
type Embedded struct {
	srv  *server.Server
	lock *os.File // holds the data directory's lock while the server runs
}

// ErrDataDirInUse means another process runs an embedded server on the
// same data directory.
var ErrDataDirInUse = errors.New("the data directory is in use by another zdmd")

// EmbeddedConfig says where the embedded server keeps its data and listens.
type EmbeddedConfig struct {
	// Config is the text of nats.conf.
	Config string
	// DataDir holds JetStream's files (in DataDir/jetstream).
	DataDir string
	// Listen overrides the config's listen address; "" keeps it, and a port
	// of 0 picks a free one. "none" accepts in-process connections only.
	Listen string
}

// StartEmbedded starts the server and waits until it accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	opts := &server.Options{}
	if cfg.Config != "" {
		if err := opts.ProcessConfigString(cfg.Config); err != nil {
			return nil, fmt.Errorf("nats config: %w", err)
		}
	}
	opts.JetStream = true
	opts.StoreDir = filepath.Join(cfg.DataDir, "jetstream")
	opts.NoSigs = true
	switch cfg.Listen {
	case "":
	case "none":
		opts.DontListen = true
	default:
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("nats listen port %q: %w", port, err)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		opts.Host, opts.Port = host, p
	}
	// The server reports neither cause but by a log line and a wait for
	// readiness that never comes: check both first, to name them at once.
	if err := os.MkdirAll(opts.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("start nats: the data directory cannot be written: %w", err)
	}
	// Two servers on one store would corrupt it. Creating the lock file
	// also proves the directory can be written.
	lock, err := lockDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()
	if !opts.DontListen && opts.Port > 0 {
		addr := net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("start nats: cannot listen on %s (--nats-listen, or listen in nats.conf): %w", addr, err)
		}
		ln.Close()
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("start nats: not ready after 30s (data dir %s)", opts.StoreDir)
	}
	ok = true
	return &Embedded{srv: srv, lock: lock}, nil
}

// Connect opens an in-process connection to the server.
func (e *Embedded) Connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect("", nats.InProcessServer(e.srv), nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect to embedded nats: %w", err)
	}
	return nc, nil
}

// ClientURL is where other processes reach the server ("" if it does not listen).
func (e *Embedded) ClientURL() string {
	if addr := e.srv.Addr(); addr != nil {
		return "nats://" + addr.String()
	}
	return ""
}

// Close stops the server and waits until its files are closed.
func (e *Embedded) Close() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	e.lock.Close() // closing the file releases its lock
}

// lockDir takes dir's lock, or says who holds it.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "zdmd.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start nats: the data directory cannot be written: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s): stop it first, or read its events through its NATS with --nats-url", ErrDataDirInUse, dir)
		}
		return nil, fmt.Errorf("start nats: lock the data directory: %w", err)
	}
	return f, nil
}
