package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/projections"
)

func migrationCmd(args []string, stdout io.Writer) error {
	return group("migration", args, stdout, func(sub string, args []string) (bool, error) {
		switch sub {
		case "list", "show", "cancel", "start", "stop-sync", "update", "events", "watch":
			return true, migrationSub(sub, args, stdout)
		}
		return false, nil
	})
}

func migrationSub(sub string, args []string, stdout io.Writer) error {
	fs := newFlags("migration " + sub)
	newClient := clientFlags(fs)
	switch sub {
	case "list":
		return migrationList(fs, newClient, args, stdout)
	case "show":
		return migrationShow(fs, newClient, args, stdout)
	case "cancel":
		asJSON := fs.Bool("json", false, "print the API's answer as it is")
		var raw json.RawMessage
		if err := callWith(fs, newClient, args, 1, "migration ID", "POST", func(ids []string) string {
			return "/v1/migrations/" + url.PathEscape(ids[0]) + "/cancel"
		}, &raw); err != nil {
			return err
		}
		var out projections.MigrationView
		if decoded, err := decodeOrPrint(raw, *asJSON, &out, stdout, "the cancel's answer"); !decoded {
			return err
		}
		fmt.Fprintf(stdout, "%s: cancelled (state %s); the source stays as it is\n", out.ID, out.State)
		return nil
	case "start":
		return migrationStart(fs, newClient, args, stdout)
	case "stop-sync":
		confirm := fs.Bool("confirm-writes-stopped", false, "confirm that writes to the source cluster have stopped (required)")
		force := fs.Bool("force", false, "stop although the lag is above the threshold")
		if err := parse(fs, args); err != nil {
			return err
		}
		id, err := oneArg(fs, "migration ID")
		if err != nil {
			return err
		}
		if !*confirm {
			return usageError("--confirm-writes-stopped: stop writing to the source cluster, then pass this flag")
		}
		c, err := newClient()
		if err != nil {
			return err
		}
		var out projections.MigrationView
		body := map[string]any{"confirm_writes_stopped": true, "force": *force}
		if err := c.do("POST", "/v1/migrations/"+url.PathEscape(id)+"/stop-sync", body, &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: sync stopped (state %s); the switch follows\n", out.ID, out.State)
		return nil
	case "update":
		return migrationUpdate(fs, newClient, args, stdout)
	case "events":
		return migrationEvents(fs, newClient, args, stdout)
	case "watch":
		return migrationWatch(fs, newClient, args, stdout)
	}
	return nil
}

func migrationStart(fs *flag.FlagSet, newClient func() (*client, error), args []string, stdout io.Writer) error {
	source := fs.String("source", "", "source cluster ID (required)")
	name := fs.String("target-name", "", "name of the new target cluster (required)")
	project := fs.String("target-project", "", "project of the target (required)")
	org := fs.String("target-organization", "", "organization of the target (default: the source's)")
	prov := fs.String("provisioner", "local", "local, pool or simulated")
	lag := fs.Float64("lag-threshold", domain.DefaultLagThresholdSeconds, "lag threshold in seconds: the switch waits for the lag to be under it")
	limit := fs.String("sync-time-limit", "", "sync time limit, e.g. 168h or 7d (default 7d)")
	policy := fs.String("on-forbidden-op", "", "reject (default) or fail")
	notify := fs.String("notify", "", "comma-separated email addresses")
	autoID := fs.String("auto-id", "", "autoID keys on a target that cannot take them: refuse (default) or preserve_keys")
	rateLimit := fs.Int64("copy-rate-limit", 0, "rows per second the copy reads from the source at most (default 0: no limit)")
	copyMode := fs.String("copy-mode", "", "auto (default), rows or segments (both clusters registered with their storage: --storage-path or --storage-s3-endpoint)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	for _, req := range []struct{ flag, v string }{{"--source", *source}, {"--target-name", *name}, {"--target-project", *project}} {
		if req.v == "" {
			return usageError("%s is required", req.flag)
		}
	}
	c, err := newClient()
	if err != nil {
		return err
	}
	options := map[string]any{}
	if flagsGiven(fs)["lag-threshold"] {
		options["lag_threshold_seconds"] = *lag
	}
	if *limit != "" {
		options["sync_time_limit"] = *limit
	}
	if *policy != "" {
		options["on_forbidden_op"] = *policy
	}
	if *notify != "" {
		// "a@x, b@y" as an operator types it: the spaces are not part of
		// an address.
		var to []string
		for _, a := range strings.Split(*notify, ",") {
			if a = strings.TrimSpace(a); a != "" {
				to = append(to, a)
			}
		}
		if len(to) == 0 {
			return usageError("--notify: %q names no email address", *notify)
		}
		options["notify"] = to
	}
	if *autoID != "" {
		options["auto_id"] = *autoID
	}
	if *rateLimit != 0 {
		options["copy_rate_limit"] = *rateLimit
	}
	if *copyMode != "" {
		options["copy_mode"] = *copyMode
	}
	body := map[string]any{
		"source_cluster_id": *source,
		"target":            map[string]any{"name": *name, "project": *project, "organization": *org, "provisioner": *prov},
		"options":           options,
	}
	var out projections.MigrationView
	if err := c.do("POST", "/v1/migrations", body, &out); err != nil {
		return flagNamed(err)
	}
	fmt.Fprintln(stdout, out.ID)
	return nil
}

// flagNamed turns the API's field names into the flags that set them.
func flagNamed(err error) error {
	ae, ok := err.(*apiError)
	if !ok || ae.Field == "" {
		return err
	}
	flags := map[string]string{
		"source_cluster_id": "--source", "target.name": "--target-name", "target.project": "--target-project",
		"target.organization": "--target-organization", "target.provisioner": "--provisioner",
		"options.lag_threshold_seconds": "--lag-threshold", "options.sync_time_limit": "--sync-time-limit",
		"options.on_forbidden_op": "--on-forbidden-op", "options.auto_id": "--auto-id", "options.copy_rate_limit": "--copy-rate-limit",
		"options.copy_mode": "--copy-mode", "state": "--state", "limit": "--limit", "after": "--after",
	}
	f := flags[ae.Field]
	if f == "" && strings.HasPrefix(ae.Field, "options.notify") {
		f = "--notify"
	}
	if f == "" {
		return err
	}
	return fmt.Errorf("%s: %s", f, strings.TrimPrefix(ae.Message, ae.Field+" "))
}

// migrationUpdate changes what a running migration lets an operator
// change: the copy's rate limit.
func migrationUpdate(fs *flag.FlagSet, newClient func() (*client, error), args []string, stdout io.Writer) error {
	rateLimit := fs.Int64("copy-rate-limit", -1, "rows per second the copy reads from the source at most; 0 lifts the limit (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := oneArg(fs, "migration ID")
	if err != nil {
		return err
	}
	switch {
	case !flagsGiven(fs)["copy-rate-limit"]:
		return usageError("--copy-rate-limit is required: rows per second, 0 for no limit")
	case *rateLimit < 0:
		return usageError("--copy-rate-limit: must be 0 (no limit) or more rows per second, not %d", *rateLimit)
	}
	c, err := newClient()
	if err != nil {
		return err
	}
	var out projections.MigrationView
	body := map[string]any{"options": map[string]any{"copy_rate_limit": *rateLimit}}
	if err := c.do("PATCH", "/v1/migrations/"+url.PathEscape(id), body, &out); err != nil {
		return flagNamed(err)
	}
	if out.Options.CopyRateLimit == 0 {
		fmt.Fprintf(stdout, "%s: the copy reads without a limit (state %s)\n", out.ID, out.State)
	} else {
		fmt.Fprintf(stdout, "%s: the copy reads at most %d rows/s (state %s)\n", out.ID, out.Options.CopyRateLimit, out.State)
	}
	return nil
}

func migrationEvents(fs *flag.FlagSet, newClient func() (*client, error), args []string, stdout io.Writer) error {
	after := fs.Uint64("after", 0, "print events stored after this sequence (SEQ); their steps are then not numbered")
	samples := fs.Bool("samples", false, "list the periodic lag samples too, not only the steps")
	asJSON := fs.Bool("json", false, "print each event as the API gives it, one JSON object a line")
	id, c, err := idAndClient(fs, newClient, args, "migration ID")
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, "STEP\tSEQ\tTIME (UTC)\tBY\tEVENT\tDETAILS")
	}
	step := 0 // unknown when the history is read from the middle
	if *after == 0 {
		step = 1
	}
	err = c.Events(context.Background(), id, *after, !*samples, func(raw json.RawMessage) error {
		if *asJSON {
			fmt.Fprintf(stdout, "%s\n", raw)
			return nil
		}
		fmt.Fprintln(tw, eventLine(step, raw))
		if step > 0 {
			step++
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Flush()
}

// eventLine is one event as an operator reads it: its step in the
// migration's history (0: unknown), its sequence, time, actor, kind and
// details, numbers as they were stored.
func eventLine(step int, raw json.RawMessage) string {
	var e struct {
		Seq   json.Number                `json:"seq"`
		At    time.Time                  `json:"at"`
		Actor string                     `json:"actor"`
		Type  string                     `json:"type"`
		Data  map[string]json.RawMessage `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&e); err != nil {
		return string(raw)
	}
	kind := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(e.Type, "zdm.migration."), "zdm.cluster."), ".v1")
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var details []string
	for _, k := range keys {
		// A text (a note, a failure's detail) is read whole; a report or a
		// list is cut, its whole in --json.
		v, limit := string(e.Data[k]), 120
		if strings.HasPrefix(v, `"`) {
			limit = 600
		}
		if len(v) > limit {
			v = v[:limit-3] + "..."
		}
		details = append(details, k+"="+v)
	}
	n := "-"
	if step > 0 {
		n = strconv.Itoa(step)
	}
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", n, e.Seq, e.At.UTC().Format("2006-01-02 15:04:05.000"), e.Actor, kind, strings.Join(details, " "))
}

// idAndClient reads a command's flags and its one argument, and opens its
// client.
func idAndClient(fs *flag.FlagSet, newClient func() (*client, error), args []string, what string) (string, *client, error) {
	if err := parse(fs, args); err != nil {
		return "", nil, err
	}
	id, err := oneArg(fs, what)
	if err != nil {
		return "", nil, err
	}
	c, err := newClient()
	return id, c, err
}
