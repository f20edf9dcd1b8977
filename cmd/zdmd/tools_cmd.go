package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/verify"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/handlers"
)

// endpointFlags adds --NAME, --NAME-user and --NAME-password (the password
// also from env), and --NAME-tls-ca, --NAME-tls-server-name,
// --NAME-tls-cert and --NAME-tls-key for a server that speaks TLS.
func endpointFlags(fs *flag.FlagSet, name, env string) func() (milvus.Endpoint, error) {
	addr := fs.String(name, "", "Milvus address host:port")
	user := fs.String(name+"-user", "", "Milvus user")
	pass := fs.String(name+"-password", "", "Milvus password (or env "+env+")")
	ca := fs.String(name+"-tls-ca", "", "reach it over TLS: PEM file of the CA that signed its certificate")
	serverName := fs.String(name+"-tls-server-name", "", "over TLS: the name its certificate carries, if not the address's host")
	cert := fs.String(name+"-tls-cert", "", "mutual TLS: PEM file of the client certificate to present")
	key := fs.String(name+"-tls-key", "", "mutual TLS: PEM file of its key")
	return func() (milvus.Endpoint, error) {
		if err := handlers.ValidateAddress(name, *addr, true); err != nil {
			return milvus.Endpoint{}, usageError("--%s: %s", name, strings.TrimPrefix(err.Error(), name+" "))
		}
		p := *pass
		if p == "" {
			p = os.Getenv(env)
		}
		ep := milvus.Endpoint{Address: *addr, Username: *user, Password: p}
		if *ca == "" && *serverName == "" && *cert == "" && *key == "" {
			return ep, nil
		}
		t := domain.ClientTLS{Mode: domain.TLSOneWay, ServerName: *serverName}
		if *cert != "" || *key != "" {
			t.Mode = domain.TLSMutual
		}
		for _, f := range []struct {
			flag string
			path string
			into *string
		}{{"tls-ca", *ca, &t.CAPEM}, {"tls-cert", *cert, &t.CertPEM}, {"tls-key", *key, &t.KeyPEM}} {
			if f.path == "" {
				continue
			}
			text, err := readPEM(name+"-"+f.flag, f.path)
			if err != nil {
				return ep, err
			}
			*f.into = text
		}
		if err := t.Validate("tls"); err != nil {
			var fe *domain.ValidationError
			if errors.As(err, &fe) {
				return ep, usageError("--%s-%s: %s", name, flagOfField(fe.Field), fe.Message)
			}
			return ep, err
		}
		cfg, err := t.Config()
		ep.TLS = cfg
		return ep, err
	}
}

func dialFlag(ctx context.Context, flagName string, ep milvus.Endpoint) (*milvus.Conn, error) {
	c, err := milvus.Dial(ctx, ep)
	if err != nil {
		return nil, fmt.Errorf("--%s %s: %w", flagName, ep.Address, err)
	}
	return c, nil
}

func seedCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("seed")
	endpoint := endpointFlags(fs, "endpoint", "ZDM_MILVUS_PASSWORD")
	s := datatools.Shape{}
	fs.IntVar(&s.Databases, "databases", 1, "number of databases")
	fs.BoolVar(&s.DefaultDB, "default-db", false, `fill the "default" database instead of new ones`)
	fs.IntVar(&s.Collections, "collections", 2, "collections per database")
	fs.IntVar(&s.Partitions, "partitions", 0, "partitions per collection besides _default")
	fs.Int64Var(&s.Rows, "rows", 1000, "rows per collection")
	fs.IntVar(&s.Dim, "dim", 128, "vector dimension")
	fs.StringVar(&s.PKType, "pk", "int64", "primary key type: int64 or varchar")
	fs.BoolVar(&s.AutoID, "auto-id", false, "let the server assign int64 keys")
	fs.BoolVar(&s.Dynamic, "dynamic", true, "enable the dynamic field and fill it")
	fs.StringVar(&s.Index, "index", "IVF_FLAT", "vector index: IVF_FLAT, HNSW, FLAT or none")
	fs.BoolVar(&s.Aliases, "aliases", true, "give each collection an alias")
	fs.BoolVar(&s.Load, "load", true, "load the collections")
	shards := fs.Int("shards", 1, "shards per collection")
	fs.Uint64Var(&s.Seed, "seed", 1, "seed of the generated data")
	fs.StringVar(&s.Prefix, "prefix", "zdm_", "prefix of database and collection names")
	drop := fs.Bool("drop-existing", false, "first drop every collection and database of the cluster (irreversible)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	s.Shards = int32(*shards)
	if err := s.Validate(); err != nil {
		return usageError("seed: %v", err)
	}
	ep, err := endpoint()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c, err := dialFlag(ctx, "endpoint", ep)
	if err != nil {
		return err
	}
	defer c.Close()
	if *drop {
		if err := c.DropEverything(ctx); err != nil {
			return err
		}
	}
	began := time.Now()
	last := time.Time{}
	err = datatools.Seed(ctx, c, s, func(done, total int64) {
		if time.Since(last) > 500*time.Millisecond || done == total {
			last = time.Now()
			fmt.Fprintf(stderr, "\rseed: %d/%d rows (%.0f%%) %.0f rows/s   ", done, total, 100*float64(done)/float64(max(total, 1)), float64(done)/time.Since(began).Seconds())
		}
	})
	fmt.Fprintln(stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded %d databases x %d collections x %d rows on %s in %s\n", len(s.DatabaseNames()), s.Collections, s.Rows, ep.Address, time.Since(began).Round(time.Millisecond))
	return nil
}

func loadCmd(args []string, stdout io.Writer) error {
	fs := newFlags("load")
	endpoint := endpointFlags(fs, "endpoint", "ZDM_MILVUS_PASSWORD")
	target := endpointFlags(fs, "target", "ZDM_TARGET_PASSWORD")
	collections := fs.String("collections", "", "db/collection,... to write to (default: every collection)")
	rate := fs.Float64("rate", 50, "writes per second")
	mixFlag := fs.String("mix", "70:20:10", "insert:upsert:delete weights")
	batch := fs.Int("batch", 10, "rows per insert")
	workers := fs.Int("workers", 4, "concurrent writers")
	duration := fs.Duration("duration", 10*time.Second, "how long to write (0: until interrupted)")
	journalPath := fs.String("journal", "", "file that receives every acknowledged write (required)")
	check := fs.String("check", "", "check this journal against --target instead of writing")
	seed := fs.Uint64("seed", 1, "seed of the generated data")
	retryFlag := fs.Bool("retry", false, "send a write that failed with UNAVAILABLE once more, a second later, as the SDKs do")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *check != "" {
		ep, err := target()
		if err != nil {
			return err
		}
		f, err := os.Open(*check)
		if err != nil {
			return usageError("--check: %v", err)
		}
		defer f.Close()
		c, err := dialFlag(ctx, "target", ep)
		if err != nil {
			return err
		}
		defer c.Close()
		rep, err := datatools.Check(ctx, c, f)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, rep.String())
		for _, e := range rep.Examples {
			fmt.Fprintln(stdout, "  "+e)
		}
		if !rep.OK() {
			return &exitError{code: 1, msg: "check failed: the target does not hold every acknowledged write exactly once"}
		}
		return nil
	}
	mix, err := datatools.ParseMix(*mixFlag)
	if err != nil {
		return usageError("%v", err)
	}
	if *journalPath == "" {
		return usageError("--journal: a file for the acknowledged writes is required")
	}
	switch {
	case *rate <= 0 || *rate > 100000:
		return usageError("--rate must be more than 0 and at most 100000 writes per second")
	case *batch < 1 || *batch > 10000:
		return usageError("--batch must be from 1 to 10000 rows per insert")
	case *workers < 1 || *workers > 256:
		return usageError("--workers must be from 1 to 256")
	case *duration < 0:
		return usageError("--duration must not be negative (0: until interrupted)")
	}
	ep, err := endpoint()
	if err != nil {
		return err
	}
	c, err := dialFlag(ctx, "endpoint", ep)
	if err != nil {
		return err
	}
	defer c.Close()
	var targets []datatools.CollectionName
	if *collections == "" {
		inv, err := c.Outline(ctx)
		if err != nil {
			return err
		}
		for _, d := range inv.Databases {
			for _, col := range d.Collections {
				targets = append(targets, datatools.CollectionName{Database: d.Name, Collection: col.Name})
			}
		}
	}
	for _, s := range strings.Split(*collections, ",") {
		if s == "" {
			continue
		}
		db, coll, ok := strings.Cut(s, "/")
		if !ok || db == "" || coll == "" {
			return usageError("--collections: %q is not db/collection", s)
		}
		targets = append(targets, datatools.CollectionName{Database: db, Collection: coll})
	}
	f, err := os.OpenFile(*journalPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return usageError("--journal: %v", err)
	}
	defer f.Close()
	st, err := datatools.Load(ctx, c, datatools.LoadConfig{Targets: targets, Rate: *rate, Mix: mix, Batch: *batch, Workers: *workers,
		Seed: *seed, Duration: *duration, Retry: *retryFlag}, f)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "load: %d writes acknowledged, %d failed, longest pause between acknowledged writes %s\n", st.Acknowledged, st.Failed, st.MaxGap.Round(time.Millisecond))
	if *retryFlag {
		fmt.Fprintf(stdout, "load: %d writes sent again after their first call failed\n", st.Retried)
	}
	if st.Failed > 0 {
		fmt.Fprintf(stdout, "load: last error: %s\n", st.LastErr)
	}
	return nil
}

func verifyCmd(args []string, stdout io.Writer) error {
	fs := newFlags("verify")
	source := endpointFlags(fs, "source", "ZDM_SOURCE_PASSWORD")
	target := endpointFlags(fs, "target", "ZDM_TARGET_PASSWORD")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	maxKeys := fs.Int("max-mismatches", 20, "mismatched keys listed per collection")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if *maxKeys < 1 || *maxKeys > 100000 {
		// 0 and less were taken for 20.
		return usageError("--max-mismatches must be from 1 to 100000")
	}
	sep, err := source()
	if err != nil {
		return err
	}
	tep, err := target()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	src, err := dialFlag(ctx, "source", sep)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := dialFlag(ctx, "target", tep)
	if err != nil {
		return err
	}
	defer dst.Close()
	rep, err := verify.Verify(ctx, src, dst, verify.Options{MaxMismatches: *maxKeys})
	if err != nil {
		return err
	}
	if *asJSON {
		if err := printJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		printReport(stdout, rep)
	}
	if !rep.Equal {
		return &exitError{code: 1, msg: "the clusters differ"}
	}
	return nil
}

func printReport(w io.Writer, rep *verify.Report) {
	for _, s := range rep.Structure {
		fmt.Fprintln(w, "structure:", s)
	}
	for _, c := range rep.Collections {
		verdict := "equal"
		if !c.Equal {
			verdict = "DIFFERENT"
		}
		fmt.Fprintf(w, "%s/%s: %s; rows %d / %d; %d ranges checksummed, %d differ; %d vectors sampled; missing %d, extra %d, different %d\n",
			c.Database, c.Collection, verdict, c.SourceRows, c.TargetRows, c.Ranges, c.RangesDiffer, c.VectorsSampled, c.Missing, c.Extra, c.Different)
		for _, k := range c.Mismatches {
			fmt.Fprintln(w, "  key", k)
		}
	}
	if rep.Equal {
		fmt.Fprintln(w, "verify: the clusters are identical")
	}
}
