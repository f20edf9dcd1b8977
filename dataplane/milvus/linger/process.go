package linger

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process starts the relay on first use and dials through it. When the
// relay cannot be started or reached, it dials the server directly and
// says so in the log.
type Process struct {
	command []string
	logger  *slog.Logger

	mu      sync.Mutex
	socket  string
	stdin   io.WriteCloser
	exited  chan struct{}
	warned  bool
	stopped bool
}

// NewProcess runs command (an executable and its arguments, which call
// Run with the process's standard input and output) as the relay.
func NewProcess(command []string, logger *slog.Logger) *Process {
	return &Process{command: command, logger: logger}
}

// Dial connects to addr through the relay, started if it is not running.
func (p *Process) Dial(ctx context.Context, addr string) (net.Conn, error) {
	socket, err := p.running()
	if err == nil {
		var c net.Conn
		if c, err = Dial(ctx, socket, addr); err == nil {
			return c, nil
		}
	}
	p.mu.Lock()
	if !p.warned {
		p.warned = true
		p.logger.Warn("calls about imports go to the target directly: if zdmd dies during one, a Milvus 2.3 target may die with it",
			"err", err)
	}
	p.mu.Unlock()
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// running returns the relay's socket, starting the relay when none runs.
func (p *Process) running() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return "", errors.New("linger: closed")
	}
	if p.exited != nil {
		select {
		case <-p.exited:
			p.exited = nil // it died: start another
		default:
			return p.socket, nil
		}
	}
	if len(p.command) == 0 {
		return "", errors.New("linger: no command")
	}
	cmd := exec.Command(p.command[0], p.command[1:]...)
	// A session of its own: a signal to zdmd's process group leaves it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", fmt.Errorf("linger: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", fmt.Errorf("linger: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("linger: start %s: %w", p.command[0], err)
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case s := <-line:
		if s == "" {
			stdin.Close()
			return "", fmt.Errorf("linger: %s gave no socket", p.command[0])
		}
		p.socket, p.stdin, p.exited = s, stdin, exited
		p.logger.Info("relay for calls about imports started", "pid", cmd.Process.Pid)
		return s, nil
	case <-time.After(10 * time.Second):
		stdin.Close()
		_ = cmd.Process.Kill()
		return "", fmt.Errorf("linger: %s gave no socket within 10s", p.command[0])
	}
}

// Close tells the relay to end once its connections have lingered, and
// starts no other.
func (p *Process) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.stdin != nil {
		p.stdin.Close()
	}
}
