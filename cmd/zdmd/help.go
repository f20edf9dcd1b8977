package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// command is what a command's help says of it.
type command struct {
	name    string // "migration show"
	args    string // what follows the name
	summary string
}

var commands = []command{
	{"serve", "[flags]", "Run the zdm service: the API and console, the migrations' saga and the Milvus proxies, on an embedded NATS unless --nats-url names one."},
	{"replay", "[flags] (--all | <migration-id>...)", "Print migrations' histories and check every step against the state machine."},
	{"migration list", "[--json] [flags]", "List the migrations, newest first: state, stage, source and target by name, rows copied, lag, start time. --json prints the API's answer."},
	{"migration show", "[--json] [flags] <migration-id>", "Show where a migration stands: state, progress per collection, rate, ETA, lag, deadline, and after a failure what to do. --json prints the API's answer."},
	{"migration watch", "[flags] <migration-id>", "Follow a migration's state, progress, lag and events until it ends."},
	{"migration start", "--source <cluster-id> --target-name <name> --target-project <project> [flags]", "Start a migration of a registered source cluster to a new target."},
	{"migration update", "[flags] <migration-id>", "Change a running migration's options (the row copy's rate limit)."},
	{"migration stop-sync", "--confirm-writes-stopped [--force] <migration-id>", "Stop the sync once the applications stopped writing to the source: zdm drains the journal, checks the target and switches."},
	{"migration cancel", "[--json] [flags] <migration-id>", "Cancel a migration; the source stays as it is, and a target zdm provisioned is released. --json prints the API's answer."},
	{"migration events", "[--samples] [--json] [flags] <migration-id>", "Print a migration's history, one step a line: its number from the migration's start, its sequence, time, actor, kind and details. --samples adds the lag samples; --json prints the events as the API gives them."},
	{"cluster list", "[--json] [flags]", "List the registered clusters, newest first: all, or those of an organization, a project or a status, or the spares; a page at a time with --limit and --after. --json prints the API's answer."},
	{"cluster show", "[--json] [flags] <cluster-id>", "Show a registered cluster: its endpoint, credentials (never shown), proxy, storage and the migration that holds it. --json prints the API's answer."},
	{"cluster register", "--name <name> --organization <org> --project <project> --endpoint <host:port> [flags]",
		"Register a Milvus cluster. Its password is read from the environment variable ZDM_CLUSTER_PASSWORD, never from the command line " +
			"(which other users of the host can read); S3 storage keys from ZDM_STORAGE_ACCESS_KEY and ZDM_STORAGE_SECRET_KEY."},
	{"cluster update", "[flags] <cluster-id>", "Change a registered cluster's settings: only the flags given change. A new password is read from ZDM_CLUSTER_PASSWORD (with --password), S3 keys from ZDM_STORAGE_ACCESS_KEY and ZDM_STORAGE_SECRET_KEY; an empty --storage-s3-endpoint removes the S3 storage."},
	{"cluster delete", "[flags] <cluster-id>", "Remove a cluster from the registry; a cluster a running migration locks stays."},
	{"seed", "[flags]", "Fill a Milvus cluster with data of a given shape."},
	{"load", "[flags]", "Write to a Milvus cluster continuously and journal every acknowledged write; --check proves them on a cluster."},
	{"verify", "[flags]", "Compare two clusters: structure, counts, checksums, vectors."},
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// groupUsage lists the subcommands of a group ("migration").
func groupUsage(group string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: zdmd %s <subcommand> [flags]\n\nsubcommands:\n", group)
	for _, c := range commands {
		if sub, ok := strings.CutPrefix(c.name, group+" "); ok {
			summary, _, _ := strings.Cut(c.summary, ". ")
			fmt.Fprintf(&b, "  %-10s  %s\n", sub, strings.TrimSuffix(summary, "."))
		}
	}
	fmt.Fprintf(&b, "\nRun \"zdmd %s <subcommand> -h\" for its flags.\n", group)
	return b.String()
}

// group runs a group's subcommand: with none, or an unknown one, it says
// which there are; asked for help, it lists them.
func group(name string, args []string, stdout io.Writer, run func(sub string, args []string) (bool, error)) error {
	if len(args) == 0 {
		return usageError("%s: give a subcommand\n\n%s", name, groupUsage(name))
	}
	if isHelp(args[0]) {
		fmt.Fprint(stdout, groupUsage(name))
		return nil
	}
	known, err := run(args[0], args[1:])
	if !known {
		return usageError("%s: unknown subcommand %q\n\n%s", name, args[0], groupUsage(name))
	}
	return err
}

// usageOf makes a flag set's help say what its command does and takes.
func usageOf(fs *flag.FlagSet, name string) {
	for _, c := range commands {
		if c.name != name {
			continue
		}
		fs.Usage = func() {
			out := fs.Output()
			fmt.Fprintf(out, "usage: zdmd %s %s\n\n%s\n\nflags:\n", c.name, c.args, c.summary)
			printFlags(out, fs)
		}
		return
	}
}
