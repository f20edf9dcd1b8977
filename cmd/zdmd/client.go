package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/zdm-io/zdm/apiclient"
)

// client talks to a zdmd API.
type client struct{ *apiclient.Client }

// apiError is an error answer of the API.
type apiError = apiclient.Error

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
		return &client{apiclient.New(*base, t)}, nil
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// do sends one request; a command-line call has no deadline but the
// client's timeout.
func (c *client) do(method, path string, body, out any) error {
	return c.Do(context.Background(), method, path, body, out)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// commandName is a subcommand's name in a message: its flag set's name
// without the program's, which every message already starts with.
func commandName(fs *flag.FlagSet) string { return strings.TrimPrefix(fs.Name(), "zdmd ") }

// oneArg returns the single positional argument of a subcommand.
func oneArg(fs *flag.FlagSet, what string) (string, error) {
	if fs.NArg() != 1 {
		return "", usageError("%s: give exactly one %s", commandName(fs), what)
	}
	return fs.Arg(0), nil
}

// listed asks for a list, each item into out. With --json it prints the
// API's answer as it is instead, and says that nothing is left to print.
// path is read once the flags are parsed, and knows whether --json is.
func listed(fs *flag.FlagSet, newClient func() (*client, error), args []string, path func(asJSON bool) string, out any, stdout io.Writer) (bool, error) {
	asJSON := fs.Bool("json", false, "print the API's answer as it is")
	var raw json.RawMessage
	if err := callWith(fs, newClient, args, 0, "arguments", "GET", func([]string) string { return path(*asJSON) }, &raw); err != nil {
		return false, err
	}
	return decodeOrPrint(raw, *asJSON, out, stdout, "the list")
}

// decodeOrPrint decodes an answer into out for a command to print in its
// own form, or with asJSON prints it as the API gave it; decoded says
// which.
func decodeOrPrint(raw json.RawMessage, asJSON bool, out any, stdout io.Writer, what string) (decoded bool, err error) {
	if asJSON {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return false, fmt.Errorf("reading %s: %w", what, err)
		}
		return false, printJSON(stdout, v)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return false, fmt.Errorf("reading %s: %w", what, err)
	}
	return true, nil
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
			return usageError("%s takes no %s", commandName(fs), what)
		}
		return usageError("%s: give exactly one %s", commandName(fs), what)
	}
	c, err := newClient()
	if err != nil {
		return err
	}
	return c.do(method, path(fs.Args()), nil, out)
}
