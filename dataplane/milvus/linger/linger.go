// Package linger relays connections from a process of its own, so that a
// server never sees a call broken off when its caller dies: when the
// caller's side closes, the relay keeps the server's side open until the
// server has answered what it was sent, then closes it.
//
// Milvus 2.3 dies when a client breaks off a call about an import (see
// dataplane/milvus's uncancelled.go). zdm never cancels those calls, but a
// killed zdmd closes its connections, and the server then cancels the
// calls itself. Through the relay, which outlives zdmd, the server sees the
// connection open until its answers are written.
package linger

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Times a connection lingers once its caller is gone: until the server
// sent nothing for Idle, and at most Max in all.
const (
	Idle = 10 * time.Second
	Max  = 2 * time.Minute
)

// maxAddress bounds the line naming a connection's server.
const maxAddress = 512

// Run serves the relay until in ends (the process that started it closed
// its side or died) and every connection has finished lingering. It
// listens on a Unix socket in a directory only this user can enter, writes
// the socket's path and a newline to out, and writes nothing more: once
// the starter is gone a write there would kill the relay.
func Run(in io.Reader, out io.Writer) error { return serve(in, out, Idle, Max) }

// serve is Run with the lingering times given.
func serve(in io.Reader, out io.Writer, idle, most time.Duration) error {
	dir, err := os.MkdirTemp("", "zdm-linger-")
	if err != nil {
		return fmt.Errorf("linger: %w", err)
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("unix", filepath.Join(dir, "relay.sock"))
	if err != nil {
		return fmt.Errorf("linger: %w", err)
	}
	if _, err := fmt.Fprintln(out, ln.Addr().String()); err != nil {
		ln.Close()
		return fmt.Errorf("linger: %w", err)
	}
	go func() {
		_, _ = io.Copy(io.Discard, in)
		ln.Close()
	}()
	var wg sync.WaitGroup
	for {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		wg.Go(func() { relay(c, idle, most) })
	}
	wg.Wait()
	return nil
}

// relay serves one connection: its first line names the server, the rest
// goes to the server, and the server's bytes come back until the caller is
// gone; then they are read and dropped until the server is idle.
func relay(down net.Conn, idle, most time.Duration) {
	defer down.Close()
	br := bufio.NewReaderSize(down, 32<<10)
	_ = down.SetReadDeadline(time.Now().Add(10 * time.Second))
	addr, err := readAddress(br)
	if err != nil {
		return
	}
	_ = down.SetReadDeadline(time.Time{})
	up, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	var mu sync.Mutex
	var goneAt time.Time
	lingerFrom := func(at time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if goneAt.IsZero() {
			goneAt = at
		}
		_ = up.SetReadDeadline(earliest(at.Add(idle), goneAt.Add(most)))
	}
	lingering := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return !goneAt.IsZero()
	}
	go func() {
		// The caller's bytes go on to the server; when the caller is
		// gone the server's side stays open, and its reads get a deadline.
		_, _ = io.Copy(up, br)
		lingerFrom(time.Now())
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := up.Read(buf)
		if n > 0 {
			if lingering() {
				lingerFrom(time.Now())
			} else if _, werr := down.Write(buf[:n]); werr != nil {
				lingerFrom(time.Now())
			}
		}
		if err != nil {
			// The server closed, or, the caller gone, it stayed idle
			// past the deadline.
			return
		}
	}
}

// readAddress reads the first line, a host:port.
func readAddress(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return "", err
	}
	addr := strings.TrimSpace(string(line))
	if len(addr) > maxAddress {
		return "", errors.New("address too long")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", err
	}
	return addr, nil
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Dial connects to addr through the relay listening at socket.
func Dial(ctx context.Context, socket, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(c, addr+"\n"); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
