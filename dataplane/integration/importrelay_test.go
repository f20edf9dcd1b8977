package integration_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/linger"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
)

// This test binary also plays the processes of
// TestAProcessKilledDuringImportCallsLeavesTheTargetAlive.
func TestMain(m *testing.M) {
	switch os.Getenv("ZDM_TEST_ROLE") {
	case "import-relay":
		if err := linger.Run(os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	case "import-caller":
		os.Exit(importCaller(os.Getenv("ZDM_TEST_TARGET"), os.Getenv("ZDM_TEST_DIRECT") == "1"))
	}
	os.Exit(m.Run())
}

// importCaller asks the target about an import from four goroutines,
// without end, as zdmd does while it waits for one, through the relay
// zdmd uses (or directly), and says "ready" once the calls run.
func importCaller(target string, direct bool) int {
	ep := milvus.Endpoint{Address: target}
	if !direct {
		relay := linger.NewProcess([]string{"/usr/bin/env", "ZDM_TEST_ROLE=import-relay", os.Args[0], "-test.run=^$"},
			slog.New(slog.NewTextHandler(os.Stderr, nil)))
		ep.ImportDial = relay.Dial
	}
	ctx := context.Background()
	c, err := milvus.Dial(ctx, ep)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := c.ImportTasks(ctx, "default", "none"); err != nil && !strings.Contains(err.Error(), "code") {
		fmt.Fprintln(os.Stderr, "first call about imports:", err)
		return 1
	}
	for range 4 {
		go func() {
			for {
				_, _ = c.ImportState(ctx, 1)
			}
		}()
	}
	fmt.Println("ready")
	select {}
}

// Milvus 2.3 dies when a call about an import is broken off, and a killed
// zdmd breaks off its calls. Through the relay zdmd starts, the target
// answers them and lives on. ZDM_LINGER_CONTROL=1 makes the callers dial
// the target directly: run so, this test kills the target (restart the
// test bed afterwards).
func TestAProcessKilledDuringImportCallsLeavesTheTargetAlive(t *testing.T) {
	bed := milvustest.Require(t)
	direct := os.Getenv("ZDM_LINGER_CONTROL") == "1"
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	const trials = 6
	for trial := 1; trial <= trials; trial++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "ZDM_TEST_ROLE=import-caller", "ZDM_TEST_TARGET="+bed.Target)
		if direct {
			cmd.Env = append(cmd.Env, "ZDM_TEST_DIRECT=1")
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(out).ReadString('\n')
			ready <- line
		}()
		select {
		case line := <-ready:
			if strings.TrimSpace(line) != "ready" {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("trial %d: the caller did not start: %q\n%s", trial, line, stderr.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("trial %d: the caller did not start within 30s\n%s", trial, stderr.String())
		}
		wait := time.Duration(100+rng.IntN(400)) * time.Millisecond
		time.Sleep(wait)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		// The server dies at once when it dies of it.
		time.Sleep(1500 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := milvus.Dial(ctx, milvus.Endpoint{Address: bed.Target})
		if err == nil {
			_, err = c.Databases(ctx)
			c.Close()
		}
		cancel()
		if err != nil {
			t.Fatalf("trial %d: the target no longer answers after a caller of import calls was killed %s after it began: %v",
				trial, wait, err)
		}
		t.Logf("trial %d: caller killed %s into its import calls; the target answers", trial, wait)
	}
}
