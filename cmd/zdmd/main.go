// Command zdmd is the zdm service and its command-line client.
//
//	zdmd serve      run the service (API, saga, embedded NATS)
//	zdmd replay     print and re-validate migration histories
//	zdmd migration  list|show|watch|start|update|stop-sync|cancel|events
//	zdmd cluster    list|show|register|update|delete
//	zdmd seed       fill a Milvus cluster with data of a given shape
//	zdmd load       write continuously; load --check proves every write arrived
//	zdmd verify     compare any two clusters
//	zdmd version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/zdm-io/zdm/dataplane/milvus/linger"
	"github.com/zdm-io/zdm/service"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `usage: zdmd <command> [flags]

commands:
  serve       run the zdm service
  replay      print a migration's history and re-validate every transition
  migration   list|show|watch|start|update|stop-sync|cancel|events (API client)
  cluster     list|show|register|update|delete (API client)
  seed        fill a Milvus cluster with a given shape of data
  load        write continuously and journal every acknowledged write; --check proves them
  verify      compare two clusters: structure, counts, checksums, vectors
  version     print the version

Run "zdmd <command> -h" for the flags of a command.
`

// importRelay runs the relay zdmd serve starts for its calls about imports
// (dataplane/milvus/linger); it serves until its standard input ends.
func importRelay(args []string, stdout io.Writer) error {
	fi, err := os.Stdin.Stat()
	if len(args) > 0 || err != nil || fi.Mode()&os.ModeCharDevice != 0 {
		return usageError("import-relay is started by zdmd serve for its calls about imports, not by hand; it takes no flags")
	}
	return linger.Run(os.Stdin, stdout)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(args[1:], stderr)
	case "replay":
		err = replay(args[1:], stdout)
	case "migration":
		err = migrationCmd(args[1:], stdout)
	case "cluster":
		err = clusterCmd(args[1:], stdout)
	case "seed":
		err = seedCmd(args[1:], stdout, stderr)
	case "load":
		err = loadCmd(args[1:], stdout)
	case "verify":
		err = verifyCmd(args[1:], stdout)
	case "import-relay":
		err = importRelay(args[1:], stdout)
	case "version", "--version", "-version":
		if len(args) > 1 {
			err = usageError("version takes no arguments")
			break
		}
		fmt.Fprintln(stdout, "zdmd", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "zdmd: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err == nil {
		return 0
	}
	var help *helpRequest
	if errors.As(err, &help) {
		help.fs.SetOutput(stdout)
		help.fs.Usage()
		return 0
	}
	var ex *exitError
	if errors.As(err, &ex) {
		if ex.msg != "" {
			fmt.Fprintln(stderr, "zdmd:", ex.msg)
		}
		return ex.code
	}
	fmt.Fprintln(stderr, "zdmd:", err)
	return 1
}

// exitError carries an exit code other than 1.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageError(format string, args ...any) error {
	return &exitError{code: 2, msg: fmt.Sprintf(format, args...)}
}

// newFlags returns a flag set whose errors are returned, not printed twice.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("zdmd "+name, flag.ContinueOnError)
	usageOf(fs, name)
	return fs
}

// parse accepts flags before and after positional arguments, as operators
// type them ("stop-sync ID --confirm-writes-stopped").
func parse(fs *flag.FlagSet, args []string) error {
	// The flag package's own messages ("-after: parse error", then every
	// flag) are replaced by one naming the flag as it is typed.
	fs.SetOutput(io.Discard)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return &helpRequest{fs}
			}
			return usageError("%s\nRun \"%s -h\" for its flags.", flagError(fs, err), fs.Name())
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	return fs.Parse(append([]string{"--"}, positional...))
}

// parseNoArgs is parse for a command that takes flags only: an argument
// left over is most often a flag's value split by a space ("--name my
// cluster"), and going on without it would act on what was not asked.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("%s takes no arguments, only flags; left over: %s (quote a value that has spaces)",
			commandName(fs), strings.Join(fs.Args(), " "))
	}
	return nil
}

// flagsGiven names the flags the command line set, whatever their value:
// a flag given its default (0, "") still counts as asked for.
func flagsGiven(fs *flag.FlagSet) map[string]bool {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	return given
}

func serve(args []string, stderr io.Writer) error {
	fs := newFlags("serve")
	configPath := fs.String("config", "", "config file (zdmd.yaml)")
	listen := fs.String("listen", "", "API address (default 127.0.0.1:8080)")
	dataDir := fs.String("data-dir", "", "data directory of the embedded NATS and the secret key (default ./data)")
	natsURL := fs.String("nats-url", "", "use this NATS server instead of the embedded one")
	natsListen := fs.String("nats-listen", "", `embedded NATS client address (default from nats.conf; "none" for in-process only)`)
	natsConfig := fs.String("nats-config", "", "nats.conf for the embedded server (default: the built-in copy)")
	natsTLS := natsTLSFlags(fs)
	natsReplicas := fs.Int("nats-replicas", 0, "NATS servers keeping each stream and bucket (default: 3 on a cluster of three or more, else 1)")
	instance := fs.String("instance", "", "this zdmd's name among those sharing one NATS (default: host name and API port)")
	dataPlane := fs.String("dataplane", "", "milvus or simulated (default milvus)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	cfg, err := service.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	for _, o := range []struct{ flag, dst *string }{{listen, &cfg.Listen}, {dataDir, &cfg.DataDir}, {natsURL, &cfg.NATSURL},
		{natsListen, &cfg.NATSListen}, {natsConfig, &cfg.NATSConfig}, {dataPlane, &cfg.DataPlane}, {instance, &cfg.Instance}} {
		if *o.flag != "" {
			*o.dst = *o.flag
		}
	}
	natsTLS(&cfg.NATSTLS)
	if exe, err := os.Executable(); err == nil {
		cfg.ImportRelay = []string{exe, "import-relay"}
	}
	if *natsReplicas != 0 {
		cfg.NATSReplicas = *natsReplicas
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageError("--log-level: %q is not debug, info, warn or error", *logLevel)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", cfg.Listen, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	m, err := service.NewMain(ctx, cfg, os.Getenv("ZDM_ADMIN_TOKEN"), logger)
	if err != nil {
		ln.Close()
		return err
	}
	err = m.Run(ctx, ln)
	stop()
	m.Close()
	logger.Info("zdmd stopped")
	return err
}
