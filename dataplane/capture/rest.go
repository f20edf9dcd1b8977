package capture

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Milvus serves its RESTful API (HTTP/1.1, /v1/vector/...) on the same
// port as gRPC, and so does the endpoint: it hands those connections to
// the REST gate (CarryREST), which makes each call a gRPC call to the
// endpoint, or, without a gate and for calls the gate does not carry,
// answers with a JSON error that says so rather than close the connection
// without a word, as a gRPC server does.

// http2Preface starts every HTTP/2 connection, and so every gRPC one.
var http2Preface = []byte("PRI * HTTP/2.0")

// restRefusal is the message a REST call gets that is not carried.
func restRefusal(gate bool) string {
	if gate {
		return "this is zdm's migration proxy, which carries Milvus's gRPC API and the RESTful API's /v1/vector calls; " +
			"this call is not one of them, so it could not be captured for the migration: " +
			"send it through a Milvus SDK or a /v1/vector call, or to the cluster itself once the migration has switched over"
	}
	return "this is zdm's migration proxy, which carries Milvus's gRPC API (pymilvus, the Go, Java and Node.js SDKs); " +
		"the RESTful API is not carried, since its writes could not be captured for the migration: " +
		"send this call through a Milvus SDK, or to the cluster itself once the migration has switched over"
}

// splitListener hands gRPC connections to Accept and REST ones to rest.
type splitListener struct {
	net.Listener
	grpc   chan net.Conn
	rest   chan net.Conn
	done   chan struct{}
	once   sync.Once
	logger *slog.Logger
}

func newSplitListener(ln net.Listener, logger *slog.Logger) *splitListener {
	s := &splitListener{Listener: ln, grpc: make(chan net.Conn), rest: make(chan net.Conn), done: make(chan struct{}), logger: logger}
	go s.sort()
	return s
}

// sort accepts connections and sends each where its first bytes say. An
// error other than the listener's closing (too many open files) is waited
// out, as a gRPC server does.
func (s *splitListener) sort() {
	defer s.Close()
	var delay time.Duration
	for {
		c, err := s.Listener.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			if delay == time.Second {
				s.logger.Warn("the proxy cannot accept connections; trying again every second", "err", err)
			}
			select {
			case <-time.After(delay):
			case <-s.done:
				return
			}
			continue
		}
		delay = 0
		go s.classify(c)
	}
}

func (s *splitListener) classify(c net.Conn) {
	br := bufio.NewReaderSize(c, len(http2Preface))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	head, _ := br.Peek(len(http2Preface))
	_ = c.SetReadDeadline(time.Time{})
	var to chan net.Conn
	switch {
	case len(head) == 0:
		c.Close() // closed, or silent for 10 s: nothing to answer
		return
	case bytes.HasPrefix(http2Preface, head):
		to = s.grpc // err: a slow gRPC client, left to gRPC's own timeouts
	default:
		to = s.rest
	}
	select {
	case to <- &peekedConn{Conn: c, r: br}:
	case <-s.done:
		c.Close()
	}
}

// Accept returns the next gRPC connection.
func (s *splitListener) Accept() (net.Conn, error) { return acceptFrom(s.grpc, s.done) }

// acceptFrom is Accept of a listener whose connections come on ch, until
// done is closed.
func acceptFrom(ch <-chan net.Conn, done <-chan struct{}) (net.Conn, error) {
	select {
	case c := <-ch:
		return c, nil
	case <-done:
		return nil, net.ErrClosed
	}
}

// Close stops both sides.
func (s *splitListener) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		err = s.Listener.Close()
	})
	return err
}

// restListener is the REST side of a splitListener.
type restListener struct{ *splitListener }

func (r restListener) Accept() (net.Conn, error) { return acceptFrom(r.rest, r.done) }

// peekedConn reads first what was peeked.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// refusalHandler answers a REST call with restRefusal, the way Milvus
// answers a failed REST call (a JSON code and message), under HTTP 501.
func refusalHandler(clusterID string, gate bool, logger *slog.Logger, refused func(string)) http.HandlerFunc {
	var mu sync.Mutex
	var warned time.Time
	msg := restRefusal(gate)
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if time.Since(warned) > time.Minute {
			warned = time.Now()
			logger.Warn("a client called Milvus's RESTful API through the proxy with a call it does not carry; refused",
				"cluster", clusterID, "client", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
		}
		mu.Unlock()
		if refused != nil {
			refused("REST") // not the path: a metric's labels stay few
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotImplemented)
		_ = json.NewEncoder(w).Encode(map[string]any{"code": http.StatusNotImplemented, "message": msg})
	}
}

// restServer serves the REST side with h.
func restServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}
}
