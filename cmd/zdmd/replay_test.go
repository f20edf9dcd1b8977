package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore"
)

// writeHistory stores batches on a data directory the way zdmd would.
func writeHistory(t *testing.T, dir, id string, batches ...[]domain.Event) {
	t.Helper()
	emb, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: dir, Listen: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	st, err := eventstore.Open(context.Background(), nc)
	if err != nil {
		t.Fatal(err)
	}
	var seq uint64
	for _, b := range batches {
		if seq, err = st.Append(context.Background(), domain.MigrationSubject+id, seq, domain.Batch{At: time.Now(), Actor: "t", Events: b}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReplayValidatesEveryTransition(t *testing.T) {
	dir := t.TempDir()
	req := domain.MigrationRequested{ID: "m-good", Source: domain.ClusterRef{ID: "c1", Organization: "acme"}, Options: domain.Options{}.WithDefaults()}
	writeHistory(t, dir, "m-good", []domain.Event{req}, []domain.Event{domain.Locked{SourceClusterID: "c1"}})
	bad := req
	bad.ID = "m-bad"
	// A switch straight after the request skips the whole flow.
	writeHistory(t, dir, "m-bad", []domain.Event{bad}, []domain.Event{domain.SwitchedOver{TargetEndpoint: "x:1"}})

	var out, errOut bytes.Buffer
	if code := run([]string{"replay", "--data-dir", dir, "m-good"}, &out, &errOut); code != 0 {
		t.Fatalf("valid history: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "m-good: valid, 2 events, state locked") || !strings.Contains(out.String(), domain.TypeLocked) {
		t.Fatalf("replay output:\n%s", out.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"replay", "--data-dir", dir, "--all"}, &out, &errOut); code != 1 {
		t.Fatalf("invalid history: exit %d, want 1\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "m-bad: INVALID history") || !strings.Contains(out.String(), "m-good: valid") {
		t.Fatalf("replay --all output:\n%s", out.String())
	}
	for _, args := range [][]string{{"replay", "--data-dir", dir}, {"replay", "--data-dir", dir, "--all", "m-good"}, {"replay", "--bogus"}} {
		errOut.Reset()
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut.String())
		}
	}
}

func TestClientFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"migration", "start", "--token", "x", "--target-name", "n", "--target-project", "p"}, "--source is required"},
		{[]string{"migration", "stop-sync", "--token", "x", "m-1"}, "--confirm-writes-stopped"},
		{[]string{"migration", "update", "--token", "x", "m-1"}, "--copy-rate-limit is required"},
		{[]string{"migration", "list"}, "--token"},
		{[]string{"migration", "list", "--token", "x", "--api", "ftp://h"}, "--api"},
		{[]string{"migration", "show", "--token", "x"}, "exactly one migration ID"},
		{[]string{"migration", "frobnicate"}, "unknown subcommand"},
		{[]string{"serve", "--log-level", "loud"}, "--log-level"},
		// The load's flags are checked before it dials the endpoint.
		{[]string{"load", "--journal", "j", "--endpoint", "127.0.0.1:1", "--rate", "0"}, "--rate must be more than 0"},
		{[]string{"load", "--journal", "j", "--endpoint", "127.0.0.1:1", "--batch", "0"}, "--batch"},
		{[]string{"load", "--journal", "j", "--endpoint", "127.0.0.1:1", "--batch", "-3"}, "--batch"},
		{[]string{"load", "--journal", "j", "--endpoint", "127.0.0.1:1", "--workers", "0"}, "--workers"},
		{[]string{"load", "--journal", "j", "--endpoint", "127.0.0.1:1", "--workers", "100000"}, "--workers"},
		{[]string{"load", "--journal", "j", "--endpoint", "127.0.0.1:1", "--duration", "-5s"}, "--duration"},
		{[]string{"verify", "--source", "127.0.0.1:1", "--target", "127.0.0.1:2", "--max-mismatches", "0"}, "--max-mismatches"},
	}
	t.Setenv("ZDM_TOKEN", "")
	for _, c := range cases {
		var out, errOut bytes.Buffer
		if code := run(c.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming %s", c.args, code, errOut.String(), c.want)
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"migration", "list", "--token", "x", "--api", "http://127.0.0.1:1"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "127.0.0.1:1") {
		t.Errorf("unreachable API: exit %d, %q", code, errOut.String())
	}
}

func TestReplayRefusesADirectoryItCannotRead(t *testing.T) {
	// A directory that does not exist is an error, and stays absent.
	missing := filepath.Join(t.TempDir(), "typo")
	err := replay([]string{"--data-dir", missing, "--all"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "holds no zdmd data") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("replay created %s: %v", missing, err)
	}
	// The directory of a running zdmd is refused at once.
	dir := t.TempDir()
	writeHistory(t, dir, "m-1", []domain.Event{domain.MigrationRequested{ID: "m-1"}})
	running, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: dir, Listen: "none"})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	err = replay([]string{"--data-dir", dir, "--all"}, &bytes.Buffer{})
	if !errors.Is(err, eventstore.ErrDataDirInUse) || time.Since(began) > 5*time.Second {
		t.Fatalf("replay beside a running zdmd: %v after %s", err, time.Since(began))
	}
	running.Close()
	if err := replay([]string{"--data-dir", dir, "--all"}, &bytes.Buffer{}); err != nil {
		t.Fatalf("replay once zdmd stopped: %v", err)
	}
}
