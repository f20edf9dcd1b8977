// Package apiclient talks to a zdmd's HTTP API: the command-line client and
// the demo use it, and it decodes answers into the projections' own view
// types, so the two sides cannot drift apart.
package apiclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/zdm-io/zdm/projections"
	"github.com/zdm-io/zdm/retry"
)

// Client is one API address and token.
type Client struct {
	Base  string
	Token string
	HTTP  *http.Client
}

// New returns a client of base (http://HOST:PORT) with token.
func New(base, token string) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), Token: token, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// Error is an error answer of the API.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s (HTTP %d, %s, field %s)", e.Message, e.Status, e.Code, e.Field)
	}
	return fmt.Sprintf("%s (HTTP %d, %s)", e.Message, e.Status, e.Code)
}

// Do sends a request (body as JSON, if any) and decodes a 2xx JSON answer
// into out; an error answer is returned as *Error. A command (any method
// but GET) carries an Idempotency-Key of its own, so that Do can send it
// again when its answer was lost or the API could not take it for a moment
// (a connection broken after it was sent, 502, 503, 504, or its first try
// still being answered), and zdmd applies it once.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return err
		}
	}
	key := ""
	if method != http.MethodGet {
		key = "cli-" + rand.Text()
	}
	return tries().Do(ctx, func(int) error {
		err := c.do(ctx, method, path, data, key, out)
		if err != nil && !transient(err) {
			return retry.Stop(err)
		}
		return err
	})
}

// tries paces Do's tries: 0.5, 1, 2 and 4 s apart, a NATS leader's
// election and more.
func tries() retry.Policy { return retry.Policy{Attempts: 5, First: 500 * time.Millisecond} }

// sent marks an error of a request that reached the API, or may have.
type sent struct{ error }

func (e sent) Unwrap() error { return e.error }

// transient says whether a try's error may pass if the request is sent
// again: not a refused connection (no zdmd there; saying so at once
// helps more) nor any other answer of the API.
func transient(err error) bool {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusBadGateway ||
			ae.Status == http.StatusGatewayTimeout || ae.Code == "idempotency_in_progress"
	}
	var s sent
	return errors.As(err, &s) && !errors.Is(err, syscall.ECONNREFUSED)
}

func (c *Client) do(ctx context.Context, method, path string, data []byte, key string, out any) error {
	var rd io.Reader
	if data != nil {
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if data != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		// The URL error repeats the method and the whole URL: the API's
		// address is said once.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return sent{fmt.Errorf("cannot reach the API at %s: %w", c.Base, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return sent{err}
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error *Error `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != nil {
			e.Error.Status = resp.StatusCode
			return e.Error
		}
		return &Error{Status: resp.StatusCode, Code: strings.ReplaceAll(strings.ToLower(http.StatusText(resp.StatusCode)), " ", "_"),
			Message: fmt.Sprintf("%s %s: %s", method, path, strings.TrimSpace(string(body)))}
	}
	if out == nil || len(body) == 0 {
		return nil
	}
	return json.Unmarshal(body, out)
}

// Migration reads one migration's status.
func (c *Client) Migration(ctx context.Context, id string) (*projections.MigrationView, error) {
	var v projections.MigrationView
	if err := c.Do(ctx, http.MethodGet, "/v1/migrations/"+url.PathEscape(id), nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Events reads a migration's history after sequence after, oldest first,
// a page at a time, and gives each event to each as the API wrote it;
// steps leaves the periodic lag samples out.
func (c *Client) Events(ctx context.Context, id string, after uint64, steps bool, each func(json.RawMessage) error) error {
	for {
		var page struct {
			Events    []json.RawMessage `json:"events"`
			NextAfter uint64            `json:"next_after"`
			More      bool              `json:"more"`
		}
		path := fmt.Sprintf("/v1/migrations/%s/events?after=%d&limit=1000&steps=%t", url.PathEscape(id), after, steps)
		if err := c.Do(ctx, http.MethodGet, path, nil, &page); err != nil {
			return err
		}
		for _, e := range page.Events {
			if err := each(e); err != nil {
				return err
			}
		}
		if !page.More {
			return nil
		}
		after = page.NextAfter
	}
}

// Readiness is what /readyz says of a zdmd that can serve.
type Readiness struct {
	Instance string `json:"instance"`
	// Drives says whether this instance drives the migrations (and serves
	// the proxies) now.
	Drives bool `json:"drives_migrations"`
}

// Ready asks /readyz once, within a second: a frozen zdmd answers
// nothing. A zdmd that cannot serve is an error.
func (c *Client) Ready(ctx context.Context) (Readiness, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/readyz", nil)
	if err != nil {
		return Readiness{}, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return Readiness{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Readiness{}, fmt.Errorf("zdmd at %s is not ready (%s)", c.Base, resp.Status)
	}
	var r Readiness
	return r, json.NewDecoder(resp.Body).Decode(&r)
}

// WaitReady polls /readyz until zdmd answers 200 or d passes.
func (c *Client) WaitReady(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := c.HTTP.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("zdmd at %s did not get ready within %s", c.Base, d)
}
