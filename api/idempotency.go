package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// IdempotencyWindow is how long the first answer to a command sent with an
// Idempotency-Key is kept for its retries.
const IdempotencyWindow = 24 * time.Hour

// abandonedAfter is how long a first try may run before a retry takes its
// place: a zdmd that died while answering leaves its record unfinished.
const abandonedAfter = 30 * time.Second

// Answers keeps the first answer to each command sent with a key; it
// must survive a restart and drop answers after IdempotencyWindow.
type Answers interface {
	// Claim stores value under key unless the key holds one already
	// (claimed is false then): of several racing tries, one wins.
	Claim(ctx context.Context, key string, value []byte) (claimed bool, err error)
	// Get returns the value of key, or nil when it has none.
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
}

// answer is a stored first answer, or the mark of one being made.
type answer struct {
	Request     string    `json:"request"` // hash of the request's body
	Pending     bool      `json:"pending,omitempty"`
	Began       time.Time `json:"began"`
	Status      int       `json:"status,omitempty"`
	ContentType string    `json:"content_type,omitempty"`
	Body        []byte    `json:"body,omitempty"`
}

// idempotencyKey is the client's key scoped to who sent it, to the route
// and to the aggregate the route names: the same key sent by another
// principal, to another route or for another migration is another command.
func idempotencyKey(c echo.Context) string {
	key := c.Request().Header.Get("Idempotency-Key")
	if key == "" {
		return ""
	}
	h := sha256.New()
	for _, part := range []string{principal(c).User, c.Request().Method, c.Path(), c.Param("id"), key} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:40]
}

// idempotent answers a retried command with its first answer, status and
// body, for IdempotencyWindow; the same key with another body is 422. A
// command whose first answer was a server error is not kept, so that its
// retry runs again. stale, if not nil, refuses to replay a first answer
// that no longer holds (a resource the command made, deleted since).
func (s *Server) idempotent(stale func(first *answer) error) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc { return s.withFirstAnswers(next, stale) }
}

func (s *Server) withFirstAnswers(next echo.HandlerFunc, stale func(first *answer) error) echo.HandlerFunc {
	return func(c echo.Context) error {
		raw, err := sentKey(c.Request().Header)
		if err != nil {
			return err
		}
		if raw == "" || s.cfg.Answers == nil {
			return next(c)
		}
		body, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return &Error{Status: http.StatusBadRequest, Code: "unreadable_body", Message: err.Error()}
		}
		c.Request().Body = io.NopCloser(bytes.NewReader(body))
		reqHash, rawHash := bodyHash(body)
		key := idempotencyKey(c)
		ctx := c.Request().Context()
		for deadline := time.Now().Add(abandonedAfter + 5*time.Second); ; {
			first, err := s.firstAnswer(ctx, key)
			if err != nil {
				return err
			}
			switch {
			case first == nil:
				mark, _ := json.Marshal(answer{Request: reqHash, Pending: true, Began: time.Now().UTC()})
				claimed, err := s.cfg.Answers.Claim(ctx, key, mark)
				if err != nil {
					return err
				}
				if claimed {
					return s.answerOnce(c, next, key, reqHash)
				}
				continue // another try took the key first
			case first.Request != reqHash && first.Request != rawHash:
				return &Error{Status: http.StatusUnprocessableEntity, Code: "idempotency_key_reused", Field: "Idempotency-Key",
					Message: "this Idempotency-Key was sent before with another request body; use a new key for a new request"}
			case !first.Pending:
				if stale != nil {
					if err := stale(first); err != nil {
						return err
					}
				}
				c.Response().Header().Set("Idempotent-Replayed", "true")
				return c.Blob(first.Status, first.ContentType, first.Body)
			case time.Since(first.Began) > abandonedAfter:
				// Its zdmd died answering; this try runs in its place. The
				// command ID makes the store keep the command once.
				return s.answerOnce(c, next, key, reqHash)
			case time.Now().After(deadline):
				return &Error{Status: http.StatusConflict, Code: "idempotency_in_progress", Field: "Idempotency-Key",
					Message: "the first request with this Idempotency-Key is still being answered; retry later"}
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// bodyHash is what tells a retry's body from another: the SHA-256 of its
// JSON laid out one way (keys sorted, no spaces), so that a retry whose
// client spaced or ordered the same body otherwise is the same request;
// a body that is not one JSON value is hashed as sent. raw is the hash of
// the bytes as sent, which answers kept before the layout was.
func bodyHash(body []byte) (canonical, raw string) {
	sum := sha256.Sum256(body)
	raw = hex.EncodeToString(sum[:])
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // a number keeps the digits it was sent with
	var v any
	if dec.Decode(&v) != nil || dec.Decode(new(any)) != io.EOF {
		return raw, raw
	}
	laid, err := json.Marshal(v)
	if err != nil {
		return raw, raw
	}
	sum = sha256.Sum256(laid)
	return hex.EncodeToString(sum[:]), raw
}

// sentKey is the request's Idempotency-Key ("" for none), refusing a key
// a client cannot have meant: sent empty (a template with no value filled
// in would otherwise make every retry a new command), sent twice, or
// longer than 255 characters.
func sentKey(h http.Header) (string, error) {
	keys := h.Values("Idempotency-Key")
	bad := func(msg string) (string, error) {
		return "", &Error{Status: http.StatusBadRequest, Code: "invalid_header", Field: "Idempotency-Key", Message: "Idempotency-Key " + msg}
	}
	switch {
	case len(keys) == 0:
		return "", nil
	case len(keys) > 1:
		return bad("must be sent once")
	case keys[0] == "":
		return bad("must not be empty: leave the header out, or give a key of 1 to 255 characters")
	case len(keys[0]) > 255:
		return bad("must be at most 255 characters")
	}
	return keys[0], nil
}

func (s *Server) firstAnswer(ctx context.Context, key string) (*answer, error) {
	data, err := s.cfg.Answers.Get(ctx, key)
	if err != nil || data == nil {
		return nil, err
	}
	var a answer
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// answerOnce runs the command and keeps its answer.
func (s *Server) answerOnce(c echo.Context, next echo.HandlerFunc, key, reqHash string) error {
	rec := &recorder{ResponseWriter: c.Response().Writer}
	c.Response().Writer = rec
	if err := next(c); err != nil {
		// Answered here, so that the error's answer is the one kept.
		c.Error(err)
	}
	ctx := context.WithoutCancel(c.Request().Context())
	status := c.Response().Status
	if status >= 500 || status == 0 {
		if err := s.cfg.Answers.Delete(ctx, key); err != nil {
			s.cfg.Logger.Warn("forget the failed answer to an idempotent request", "err", err)
		}
		return nil
	}
	a, _ := json.Marshal(answer{Request: reqHash, Began: time.Now().UTC(), Status: status,
		ContentType: c.Response().Header().Get(echo.HeaderContentType), Body: rec.body.Bytes()})
	if err := s.cfg.Answers.Put(ctx, key, a); err != nil {
		s.cfg.Logger.Warn("keep the answer to an idempotent request", "err", err)
	}
	return nil
}

// recorder copies what a handler writes.
type recorder struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// clusterDeletedSince refuses to replay a cluster's registration once
// that cluster is deleted: its 201 would name a cluster that is gone, and
// a client that reads it back would find none.
func (s *Server) clusterDeletedSince(first *answer) error {
	if first.Status != http.StatusCreated {
		return nil
	}
	var made struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(first.Body, &made) != nil {
		return nil
	}
	if v, ok := s.cfg.Clusters.Get(made.ID); ok && v.Deleted {
		return &Error{Status: http.StatusConflict, Code: "cluster_deleted", Field: "Idempotency-Key",
			Message: fmt.Sprintf("this Idempotency-Key registered cluster %s, which was deleted since; use a new key to register it again", made.ID)}
	}
	return nil
}
