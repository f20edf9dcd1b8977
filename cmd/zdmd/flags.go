package main

import (
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// helpRequest is -h or --help: run prints the command's usage to stdout,
// so that it can be paged or searched, and exits 0.
type helpRequest struct{ fs *flag.FlagSet }

func (h *helpRequest) Error() string { return "help requested" }

// Unwrap lets errors.Is(err, flag.ErrHelp) still hold.
func (h *helpRequest) Unwrap() error { return flag.ErrHelp }

// The flag package's errors, as of Go 1.26.
var (
	undefinedFlag = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	badValue      = regexp.MustCompile(`^invalid (?:boolean )?value (".*") for (?:flag )?-+([^:]+): (.*)$`)
	missingValue  = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
)

// flagError says what is wrong with a command line in the words of its
// help: the flag as --name, and what its value must be.
func flagError(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if m := undefinedFlag.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("--%s: %s has no such flag", m[1], fs.Name())
	}
	if m := missingValue.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("--%s: needs a value", m[1])
	}
	if m := badValue.FindStringSubmatch(msg); m != nil {
		f := fs.Lookup(m[2])
		why := m[3]
		if f != nil && (why == "parse error" || why == "value out of range") {
			kind, _ := flag.UnquoteUsage(f)
			why = "want " + valueKind(kind)
		}
		return fmt.Sprintf("--%s: %s is not a valid value (%s)", m[2], m[1], why)
	}
	return msg
}

// valueKind is a flag's value type in an operator's words.
func valueKind(kind string) string {
	switch kind {
	case "int":
		return "a whole number"
	case "uint":
		return "a whole number, 0 or more"
	case "float":
		return "a number"
	case "duration":
		return "a duration such as 30s, 5m or 2h"
	case "":
		return "true or false"
	}
	return "a " + kind
}

// printFlags lists a command's flags as they are typed (--name), each
// with its kind of value, what it does and its default.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if kind != "" {
			line += " " + kind
		}
		fmt.Fprintln(w, line)
		fmt.Fprintf(w, "      %s", strings.ReplaceAll(usage, "\n", "\n      "))
		switch f.DefValue {
		case "", "0", "false", "0s", "[]":
		default:
			if kind == "string" {
				fmt.Fprintf(w, " (default %q)", f.DefValue)
			} else {
				fmt.Fprintf(w, " (default %v)", f.DefValue)
			}
		}
		fmt.Fprintln(w)
	})
}
