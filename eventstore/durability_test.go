package eventstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/eventstore"
)

// journalWriter, run as a child process of this test binary, appends
// journal entries as fast as it can on an embedded server configured by
// the shipped nats.conf, printing each acknowledged sequence.
func journalWriter(dir string) {
	ctx := context.Background()
	emb, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: dir, Listen: "none"})
	if err != nil {
		panic(err)
	}
	nc, err := emb.Connect("writer")
	if err != nil {
		panic(err)
	}
	store, err := eventstore.Open(ctx, nc)
	if err != nil {
		panic(err)
	}
	j, err := store.OpenJournal(ctx)
	if err != nil {
		panic(err)
	}
	payload := make([]byte, 50000) // a batch of 100 rows of 128-dim vectors
	for i := 0; ; i++ {
		seq, err := j.Append(ctx, fmt.Sprintf("zdm.journal.m.d_db.c_c%d", i%5), payload, "")
		if err != nil {
			panic(err)
		}
		fmt.Println(seq)
	}
}

func TestMain(m *testing.M) {
	if dir := os.Getenv("ZDM_TEST_JOURNAL_WRITER"); dir != "" {
		journalWriter(dir)
		return
	}
	os.Exit(m.Run())
}

// zdmd embeds its JetStream server, so a killed zdmd kills the server
// too: every append it acknowledged (a write the client was told
// succeeded) must be there after a restart, with the shipped nats.conf.
func TestAcknowledgedAppendsSurviveAKilledProcess(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "ZDM_TEST_JOURNAL_WRITER="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		var acked uint64
		stopAt := time.Now().Add(time.Duration(700+300*round) * time.Millisecond)
		for sc.Scan() {
			acked, _ = strconv.ParseUint(strings.TrimSpace(sc.Text()), 10, 64)
			if time.Now().After(stopAt) {
				break
			}
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if acked == 0 {
			t.Fatal("the writer acknowledged nothing")
		}

		emb, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: dir, Listen: "none"})
		if err != nil {
			t.Fatal(err)
		}
		nc, err := emb.Connect("check")
		if err != nil {
			t.Fatal(err)
		}
		store, err := eventstore.Open(ctx, nc)
		if err != nil {
			t.Fatal(err)
		}
		j, err := store.OpenJournal(ctx)
		if err != nil {
			t.Fatal(err)
		}
		last, err := j.LastSeq(ctx, "zdm.journal.>")
		if err != nil {
			t.Fatal(err)
		}
		nc.Close()
		emb.Close()
		if last < acked {
			t.Fatalf("round %d: %d appends acknowledged, only %d stored after the kill", round, acked, last)
		}
		t.Logf("round %d: acknowledged %d, stored %d", round, acked, last)
	}
}

func TestEmbeddedServerNamesWhyItCannotStart(t *testing.T) {
	// A port taken by another process.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	began := time.Now()
	_, err = eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: t.TempDir(), Listen: ln.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "address already in use") || time.Since(began) > 5*time.Second {
		t.Fatalf("port taken: %v after %s", err, time.Since(began))
	}
	// A data directory that cannot be written (below a file).
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: filepath.Join(file, "data"), Listen: "none"})
	if err == nil || !strings.Contains(err.Error(), "cannot be written") || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("unwritable: %v", err)
	}
	// A data directory another server holds.
	dir := t.TempDir()
	first, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: dir, Listen: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: zdm.NATSConfig, DataDir: dir, Listen: "none"}); !errors.Is(err, eventstore.ErrDataDirInUse) {
		t.Fatalf("second server on one directory: %v", err)
	}
}

// A lone server refuses a replicated store for good: it is told at once,
// with what to change, not after a minute of tries.
func TestALoneServerRefusesReplicasAtOnce(t *testing.T) {
	nc := embeddedConn(t, zdm.NATSConfig)
	began := time.Now()
	_, err := eventstore.OpenReplicated(context.Background(), nc, 3)
	if err == nil || !strings.Contains(err.Error(), "--nats-replicas 1") || time.Since(began) > 2*time.Second {
		t.Fatalf("three replicas on a lone server: %v after %s", err, time.Since(began))
	}
}

// embeddedConn starts an embedded server with config for the test and
// connects to it.
func embeddedConn(t *testing.T, config string) *nats.Conn {
	t.Helper()
	emb, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: config, DataDir: t.TempDir(), Listen: "none"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
