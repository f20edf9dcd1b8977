package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"time"

	"github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/dataplane/rowcopy"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/projections"
)

// migrationShow prints a migration's summary, or with --json the API's
// answer as it is.
func migrationShow(fs *flag.FlagSet, newClient func() (*client, error), args []string, stdout io.Writer) error {
	asJSON := fs.Bool("json", false, "print the API's answer as it is")
	id, c, err := idAndClient(fs, newClient, args, "migration ID")
	if err != nil {
		return err
	}
	if *asJSON {
		var out map[string]any
		if err := c.do("GET", "/v1/migrations/"+url.PathEscape(id), nil, &out); err != nil {
			return err
		}
		return printJSON(stdout, out)
	}
	m, err := c.Migration(context.Background(), id)
	if err != nil {
		return err
	}
	for _, line := range summary(m, time.Now()) {
		fmt.Fprintln(stdout, line)
	}
	return nil
}

// staleLag is how old a lag sample is before show says it is not the lag
// now.
const staleLag = 30 * time.Second

// staleLagLine says, of a running migration whose lag was sampled over
// staleLag ago, that the lag printed is old: the zdmd that drives the
// migration samples it every second.
func staleLagLine(m *projections.MigrationView, now time.Time) []string {
	at := m.LagSampledAt
	if at == nil || domain.IsTerminal(m.State) || now.Sub(*at) <= staleLag {
		return nil
	}
	return []string{fmt.Sprintf("the lag was last sampled %s ago: no zdmd has sampled it since (is one driving this migration?)", humanDuration(now.Sub(*at)))}
}

// summary is what an operator asks of a migration: where it stands, how
// far the copy is and how fast it goes, the lag, the deadline, what the
// target could not do as the source did, and after a failure what
// happened and what to do.
func summary(m *projections.MigrationView, now time.Time) []string {
	lines := frame(m)
	target := m.Target.Name
	if m.Target.Project != "" {
		target += " (project " + m.Target.Project + ")"
	}
	lines = append([]string{lines[0], fmt.Sprintf("source %s (%s), target %s", orDash(m.Source.Name), m.SourceClusterID, target)}, lines[1:]...)
	lines = append(lines, staleLagLine(m, now)...)
	lines = append(lines, preflightLines(m.Preflight)...)
	for _, n := range m.Notes {
		lines = append(lines, fmt.Sprintf("note (%s): %s", n.At.UTC().Format("2006-01-02 15:04 MST"), n.Note))
	}
	for _, n := range m.Notifications {
		for _, to := range slices.Sorted(maps.Keys(n.Refused)) {
			lines = append(lines, fmt.Sprintf("email %s refused for good to %s: %s", n.Kind, to, n.Refused[to]))
		}
	}
	if d := m.SyncDeadline; d != nil && !domain.IsTerminal(m.State) {
		lines = append(lines, fmt.Sprintf("stop the sync by %s (in %s), or the migration fails", d.UTC().Format("2006-01-02 15:04 MST"), humanDuration(d.Sub(now))))
	}
	switch {
	case m.FailureReason != "":
		if a, ok := zdm.FailureAdvice()[m.FailureReason]; ok {
			lines = append(lines, "what happened: "+a[0], "what to do: "+a[1])
		}
	case m.State == domain.StateCancelled:
		lines = append(lines, "cancelled by "+orDash(m.CancelledBy))
	}
	return lines
}

// preflightLines give what the preflight decided and asks of the operator:
// the copy mode and why, and its notes (autoID keys kept, users and roles
// the target lacks).
func preflightLines(raw json.RawMessage) []string {
	var pf rowcopy.Preflight
	if len(raw) == 0 || json.Unmarshal(raw, &pf) != nil {
		return nil
	}
	var out []string
	if pf.CopyMode != "" {
		out = append(out, "copy by "+pf.CopyMode+": "+pf.CopyModeReason)
	}
	for _, n := range pf.Notes {
		out = append(out, "preflight note: "+n)
	}
	return out
}

// humanDuration reads at every magnitude: "2d 1h", "3h 5m", "4m 10s",
// "850ms".
func humanDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + humanDuration(-d)
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd %dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", d/time.Hour, d%time.Hour/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm %ds", d/time.Minute, d%time.Minute/time.Second)
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}
