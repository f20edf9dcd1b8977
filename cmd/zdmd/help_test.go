package main

import (
	"bytes"
	"strings"
	"testing"
)

// Every command and subcommand answers -h and --help with its usage, and
// each group lists its subcommands.
func TestEveryCommandAnswersHelp(t *testing.T) {
	for _, c := range commands {
		fs := newFlags(c.name)
		var out bytes.Buffer
		fs.SetOutput(&out)
		fs.Usage()
		if !strings.HasPrefix(out.String(), "usage: zdmd "+c.name+" ") || !strings.Contains(out.String(), c.summary) {
			t.Errorf("%s -h: %q", c.name, out.String())
		}
		for _, flag := range []string{"-h", "--help"} {
			args := append(strings.Fields(c.name), flag)
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != 0 {
				t.Errorf("zdmd %s: exit %d: %s", strings.Join(args, " "), code, stderr.String())
			}
		}
	}
	for _, group := range []string{"migration", "cluster"} {
		for _, flag := range []string{"-h", "--help", "help"} {
			var stdout, stderr bytes.Buffer
			if code := run([]string{group, flag}, &stdout, &stderr); code != 0 {
				t.Errorf("zdmd %s %s: exit %d: %s", group, flag, code, stderr.String())
			}
			for _, c := range commands {
				if sub, ok := strings.CutPrefix(c.name, group+" "); ok && !strings.Contains(stdout.String(), "  "+sub+" ") {
					t.Errorf("zdmd %s %s does not list %s: %s", group, flag, sub, stdout.String())
				}
			}
		}
		var stdout, stderr bytes.Buffer
		if code := run([]string{group}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "subcommands:") {
			t.Errorf("zdmd %s: exit %d, %q; want 2 and the subcommands", group, code, stderr.String())
		}
	}
}

// A subcommand given the wrong number of IDs says so once, naming itself
// after the program's prefix, not beside a second one.
func TestAWrongArgumentCountIsNamedOnce(t *testing.T) {
	for _, c := range commands {
		group, _, ok := strings.Cut(c.name, " ")
		if !ok || (group != "migration" && group != "cluster") {
			continue
		}
		args := append(strings.Fields(c.name), "--token", "t", "a", "b", "c")
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Errorf("zdmd %s with three IDs: exit %d (%s), want 2", c.name, code, stderr.String())
			continue
		}
		if msg := stderr.String(); !strings.HasPrefix(msg, "zdmd: "+c.name) || strings.Count(msg, "zdmd") != 1 {
			t.Errorf("zdmd %s with three IDs: %q", c.name, msg)
		}
	}
}

// import-relay is zdmd serve's own helper: by hand, or with flags, it
// says so instead of waiting on the terminal.
func TestTheImportRelayIsNotRunByHand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"import-relay", "-h"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "started by zdmd serve") {
		t.Fatalf("zdmd import-relay -h: exit %d: %q", code, stderr.String())
	}
	if stdout.Len() > 0 {
		t.Fatalf("zdmd import-relay -h started a relay: %q", stdout.String())
	}
}

// A wrong flag or value is named as it is typed, with what the value must
// be, and -h prints the flags as they are typed, to standard output.
func TestAFlagErrorNamesTheFlagAsTyped(t *testing.T) {
	for args, want := range map[string]string{
		"migration events m-1 --after -1":   `--after: "-1" is not a valid value (want a whole number, 0 or more)`,
		"migration events m-1 --limit 5":    "--limit: zdmd migration events has no such flag",
		"migration events m-1 --after":      "--after: needs a value",
		"migration list --json=maybe":       `--json: "maybe" is not a valid value (want true or false)`,
		"load --duration 5x":                `--duration: "5x" is not a valid value (want a duration such as 30s, 5m or 2h)`,
		"migration start --lag-threshold x": `--lag-threshold: "x" is not a valid value (want a number)`,
	} {
		var stdout, stderr bytes.Buffer
		code := run(strings.Fields(args), &stdout, &stderr)
		if code != 2 || !strings.HasPrefix(stderr.String(), "zdmd: "+want+"\n") || !strings.Contains(stderr.String(), "-h\" for its flags") {
			t.Errorf("zdmd %s: exit %d, %q; want 2 and %q", args, code, stderr.String(), want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"migration", "start", "-h"}, &stdout, &stderr); code != 0 || stderr.Len() != 0 ||
		!strings.Contains(stdout.String(), "\n  --lag-threshold float\n") || !strings.Contains(stdout.String(), `(default "http://127.0.0.1:8080")`) {
		t.Errorf("migration start -h: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

// version takes no arguments: one left over is most often a mistyped
// command, and printing the version would hide it.
func TestVersionTakesNoArguments(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"version", "--json"}, &stdout, &stderr); code != 2 || stdout.Len() != 0 || !strings.Contains(stderr.String(), "version takes no arguments") {
		t.Errorf("zdmd version --json: exit %d, %q %q", code, stdout.String(), stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"version"}, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "zdmd ") {
		t.Errorf("zdmd version: exit %d, %q %q", code, stdout.String(), stderr.String())
	}
}
