package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/projections"
)

// Exit codes of `zdmd migration watch`: how the migration ended.
const (
	exitSwitchedOver = 0
	exitFailed       = 3
	exitCancelled    = 4
)

// migrationWatch follows a migration until it ends: progress bars redrawn
// in place on a terminal, one line per change otherwise (or with --plain).
func migrationWatch(fs *flag.FlagSet, newClient func() (*client, error), args []string, stdout io.Writer) error {
	interval := fs.Duration("interval", time.Second, "how often to ask for the migration's status")
	plain := fs.Bool("plain", false, "one line per change, even on a terminal")
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := oneArg(fs, "migration ID")
	if err != nil {
		return err
	}
	if *interval < 100*time.Millisecond {
		return usageError("--interval: %s is shorter than 100ms", *interval)
	}
	c, err := newClient()
	if err != nil {
		return err
	}
	w := &watcher{out: stdout, tty: !*plain && isTerminal(stdout)}
	var unreachableSince time.Time
	for {
		m, err := c.Migration(context.Background(), id)
		var ae *apiError
		switch {
		case errors.As(err, &ae):
			return err
		case err != nil:
			// zdmd restarting is part of operating it: keep watching
			// for a while before giving up.
			if unreachableSince.IsZero() {
				unreachableSince = time.Now()
				w.note("zdmd unreachable (%v); retrying", err)
			}
			if time.Since(unreachableSince) > time.Minute {
				return fmt.Errorf("zdmd unreachable for a minute: %w", err)
			}
		default:
			unreachableSince = time.Time{}
			w.show(m)
			if code, msg, done := ended(m); done {
				if code == 0 {
					return nil
				}
				return &exitError{code: code, msg: msg}
			}
		}
		time.Sleep(*interval)
	}
}

// ended tells whether the migration is over, and the exit code that says how.
func ended(m *projections.MigrationView) (int, string, bool) {
	switch m.State {
	case domain.StateSwitchedOver:
		return exitSwitchedOver, "", true
	case domain.StateFailed:
		msg := fmt.Sprintf("migration %s failed: %s", m.ID, m.FailureReason)
		if m.FailureDetail != "" {
			msg += " (" + m.FailureDetail + ")"
		}
		return exitFailed, msg, true
	case domain.StateCancelled:
		return exitCancelled, fmt.Sprintf("migration %s was cancelled by %s", m.ID, m.CancelledBy), true
	}
	return 0, "", false
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

type watcher struct {
	out   io.Writer
	tty   bool
	last  string // the last plain line, so only changes are printed
	drawn int    // lines of the last terminal frame, redrawn in place
	notes int    // the migration's notes printed so far
}

func (w *watcher) note(format string, args ...any) {
	if w.tty && w.drawn > 0 {
		fmt.Fprintln(w.out)
		w.drawn = 0
	}
	fmt.Fprintf(w.out, "%s "+format+"\n", append([]any{time.Now().UTC().Format(time.RFC3339)}, args...)...)
}

func (w *watcher) show(m *projections.MigrationView) {
	// What the target could not do as the source did is said once, as it
	// is noted: it asks something of the operator.
	for _, n := range m.Notes[min(w.notes, len(m.Notes)):] {
		w.note("note: %s", n.Note)
	}
	w.notes = max(w.notes, len(m.Notes))
	if !w.tty {
		line := plainLine(m)
		if line != w.last {
			w.last = line
			fmt.Fprintf(w.out, "%s %s\n", time.Now().UTC().Format(time.RFC3339), line)
		}
		return
	}
	lines := append(frame(m), staleLagLine(m, time.Now())...)
	var b strings.Builder
	if w.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", w.drawn)
	}
	for _, l := range lines {
		b.WriteString("\x1b[2K" + l + "\n")
	}
	// A shorter frame leaves no stale lines below it.
	for range max(0, w.drawn-len(lines)) {
		b.WriteString("\x1b[2K\n")
	}
	w.drawn = max(w.drawn, len(lines))
	fmt.Fprint(w.out, b.String())
}

// plainLine is one line per state of the migration, for logs and scripts.
func plainLine(m *projections.MigrationView) string {
	p := m.Progress
	parts := []string{
		"migration=" + m.ID, "state=" + string(m.State), "stage=" + orDash(m.Stage),
		fmt.Sprintf("copied=%d/%d", p.RowsCopied, p.RowsTotal),
		fmt.Sprintf("percent=%.1f", percent(p.RowsCopied, p.RowsTotal)),
		fmt.Sprintf("rows_per_second=%.0f", p.RowsPerSecond),
		"eta=" + dur(p.ETASeconds),
		"lag=" + dur(m.LagSeconds),
	}
	if p.SegmentsCopied > 0 {
		// Only a segment copy has them; a row copy's line stays as it was.
		parts = append(parts, fmt.Sprintf("segments=%d", p.SegmentsCopied), fmt.Sprintf("bytes=%d", p.BytesCopied))
	}
	switch {
	case m.FailureReason != "":
		parts = append(parts, "reason="+m.FailureReason)
	case m.Target.Connection != nil:
		parts = append(parts, "target="+m.Target.Connection.Endpoint)
	}
	return strings.Join(parts, " ")
}

// bar is one line of progress.
type bar struct {
	name          string
	copied, total int64
	rate          float64
	eta           *float64
	done          bool
	skipped       string
	// over marks a total whose copy has nothing left to do: no ETA.
	over bool
}

// copyOver says the copy has nothing left to do: it ended, or the
// migration did.
func copyOver(m *projections.MigrationView) bool {
	if domain.IsTerminal(m.State) {
		return true
	}
	for _, c := range m.Progress.Collections {
		if !c.Done && c.Skipped == "" {
			return false
		}
	}
	return len(m.Progress.Collections) > 0
}

// frame is the terminal view: one bar per collection and in total.
func frame(m *projections.MigrationView) []string {
	out := []string{fmt.Sprintf("migration %s  state %s  stage %s", m.ID, m.State, orDash(m.Stage))}
	width := len("total")
	for _, c := range m.Progress.Collections {
		width = max(width, len(c.Database)+1+len(c.Collection))
	}
	row := func(b bar) string {
		tail := fmt.Sprintf("%s/%s rows", count(b.copied), count(b.total))
		switch {
		case b.skipped != "":
			tail += "  skipped: " + b.skipped
		case b.done:
			tail += "  done"
		case b.over:
			// The total of a copy that ended gives the copy's own rate.
			if b.rate > 0 && (!domain.IsTerminal(m.State) || m.State == domain.StateSwitchedOver) {
				tail += fmt.Sprintf("  copied at %s rows/s", count(int64(b.rate)))
			}
		case domain.IsTerminal(m.State):
			tail += "  stopped"
		default:
			tail += fmt.Sprintf("  %s rows/s  ETA %s", count(int64(b.rate)), dur(b.eta))
		}
		return fmt.Sprintf("%-*s %s %5.1f%%  %s", width, b.name, progressBar(b.copied, b.total, 30), percent(b.copied, b.total), tail)
	}
	for _, c := range m.Progress.Collections {
		out = append(out, row(bar{c.Database + "." + c.Collection, c.RowsCopied, c.RowsTotal, c.RowsPerSecond, c.ETASeconds, c.Done, c.Skipped, false}))
	}
	p := m.Progress
	out = append(out, row(bar{"total", p.RowsCopied, p.RowsTotal, p.RowsPerSecond, p.ETASeconds, false, "", copyOver(m)}))
	if p.SegmentsCopied > 0 {
		out = append(out, fmt.Sprintf("segments staged on the target %s (%s)", count(int64(p.SegmentsCopied)), byteSize(p.BytesCopied)))
	}
	lag := "lag " + dur(m.LagSeconds)
	if m.Options.LagThresholdSeconds > 0 {
		lag += fmt.Sprintf(" (threshold %s, max %s)", dur(&m.Options.LagThresholdSeconds), dur(&m.MaxLagSeconds))
	}
	out = append(out, lag)
	switch {
	case m.FailureReason != "":
		out = append(out, "failed: "+m.FailureReason+" "+m.FailureDetail)
	case m.Target.Connection != nil:
		pause := ""
		if m.WritePauseMS != nil {
			pause = fmt.Sprintf(", write pause %.0f ms", *m.WritePauseMS)
			if p := m.WritePause; p != nil {
				pause += " (" + p.String() + ")"
			}
		}
		out = append(out, "switched over to "+m.Target.Connection.Endpoint+pause)
	}
	return out
}

func progressBar(done, total int64, width int) string {
	n := int(percent(done, total) / 100 * float64(width))
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "]"
}

func percent(done, total int64) float64 {
	if total <= 0 {
		if done > 0 {
			return 100
		}
		return 0
	}
	return min(100, 100*float64(done)/float64(total))
}

func dur(s *float64) string {
	if s == nil {
		return "-"
	}
	if *s >= 1e6 { // beyond what a Duration of tenths can hold comfortably
		return fmt.Sprintf("%.0fs", *s)
	}
	return (time.Duration(*s*10) * time.Second / 10).String()
}

func count(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// byteSize reads a byte count the way an operator says it.
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}
