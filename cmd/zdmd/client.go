package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// client talks to a zdmd API.
type client struct {
	base  string
	token string
	http  *http.Client
}

// clientFlags adds --api and --token (defaults from ZDM_API and ZDM_TOKEN).
func clientFlags(fs *flag.FlagSet) func() (*client, error) {
	base := fs.String("api", envOr("ZDM_API", "http://127.0.0.1:8080"), "zdmd API address (env ZDM_API)")
	token := fs.String("token", "", "API token (env ZDM_TOKEN)")
	return func() (*client, error) {
		t := *token
		if t == "" {
			t = os.Getenv("ZDM_TOKEN")
		}
		if t == "" {
			return nil, usageError("--token: an API token is required (or set ZDM_TOKEN)")
		}
		if !strings.HasPrefix(*base, "http://") && !strings.HasPrefix(*base, "https://") {
			return nil, usageError("--api: %q must start with http:// or https://", *base)
		}
		return &client{base: strings.TrimRight(*base, "/"), token: t, http: &http.Client{Timeout: 30 * time.Second}}, nil
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// apiError is an error answer of the API.
type apiError struct {
	Status int
	Code   string `json:"code"`
	Msg    string `json:"message"`
	Field  string `json:"field"`
}

func (e *apiError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s (HTTP %d, %s, field %s)", e.Msg, e.Status, e.Code, e.Field)
	}
	return fmt.Sprintf("%s (HTTP %d, %s)", e.Msg, e.Status, e.Code)
}

// do sends a request and decodes a 2xx JSON answer into out.
func (c *client) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("--api %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error *apiError `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != nil {
			e.Error.Status = resp.StatusCode
			return e.Error
		}
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, out)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// oneArg returns the single positional argument of a subcommand.
func oneArg(fs *flag.FlagSet, what string) (string, error) {
	if fs.NArg() != 1 {
		return "", usageError("%s: give exactly one %s", fs.Name(), what)
	}
	return fs.Arg(0), nil
}

// callWith parses a subcommand's flags and positional IDs (want of them),
// then sends one request and decodes the answer into out.
func callWith(fs *flag.FlagSet, newClient func() (*client, error), args []string, want int, what, method string,
	path func(ids []string) string, out any) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != want {
		if want == 0 {
			return usageError("%s takes no %s", fs.Name(), what)
		}
		return usageError("%s: give exactly one %s", fs.Name(), what)
	}
	c, err := newClient()
	if err != nil {
		return err
	}
	return c.do(method, path(fs.Args()), nil, out)
}
