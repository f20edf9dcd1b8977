package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/service"
)

// replay prints the history of migrations and folds it through the
// transition table; an event the table refuses makes the exit non-zero.
func replay(args []string, stdout io.Writer) error {
	fs := newFlags("replay")
	dataDir := fs.String("data-dir", "./data", "data directory of a stopped zdmd (its embedded NATS is opened here)")
	natsURL := fs.String("nats-url", "", "read from this NATS server instead (works while zdmd runs)")
	natsTLS := natsTLSFlags(fs)
	all := fs.Bool("all", false, "replay every migration")
	quiet := fs.Bool("quiet", false, "print only the verdict of each migration")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: zdmd replay [--data-dir DIR | --nats-url URL [--nats-tls-*]] [--quiet] (--all | <migration-id>...)\n\nflags:\n")
		printFlags(fs.Output(), fs)
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	ids := fs.Args()
	if *all == (len(ids) > 0) {
		return usageError("replay: give migration IDs or --all, not both or neither")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if *natsURL == "" {
		// Opening the store would create one: a mistyped directory must
		// be an error, not an empty history.
		if _, err := os.Stat(filepath.Join(*dataDir, "jetstream")); err != nil {
			return fmt.Errorf("--data-dir %s: holds no zdmd data (%w)", *dataDir, err)
		}
	}
	cfg := service.Config{DataDir: *dataDir, NATSURL: *natsURL}
	natsTLS(&cfg.NATSTLS)
	if err := cfg.NATSTLS.Validate(cfg.NATSURL); err != nil {
		return err
	}
	emb, nc, store, err := service.OpenEvents(ctx, cfg, "none")
	if err != nil {
		return err
	}
	defer func() {
		nc.Close()
		if emb != nil {
			emb.Close()
		}
	}()
	if *all {
		subjects, err := store.Subjects(ctx, domain.MigrationSubject)
		if err != nil {
			return err
		}
		for _, s := range subjects {
			ids = append(ids, strings.TrimPrefix(s, domain.MigrationSubject))
		}
	}
	invalid := 0
	for _, id := range ids {
		subj, err := domain.MigrationStream(id)
		if err != nil {
			return usageError("replay: %q is not a migration ID", id)
		}
		recs, _, err := store.Load(ctx, subj, 0)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			fmt.Fprintf(stdout, "%s: no events\n", id)
			invalid++
			continue
		}
		if !*quiet {
			for _, r := range recs {
				data, _ := json.Marshal(r.Event)
				fmt.Fprintf(stdout, "%s  seq=%-6d %s  %-8s %s %s\n", id, r.Seq, r.At.UTC().Format(time.RFC3339Nano), r.Actor, r.Event.EventType(), data)
			}
		}
		m, err := domain.Fold(recs)
		if err != nil {
			fmt.Fprintf(stdout, "%s: INVALID history: %v\n", id, err)
			invalid++
			continue
		}
		fmt.Fprintf(stdout, "%s: valid, %d events, state %s\n", id, len(recs), m.State)
	}
	if invalid > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d of %d migration histories are invalid", invalid, len(ids))}
	}
	return nil
}
