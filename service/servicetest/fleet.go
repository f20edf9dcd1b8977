package servicetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zdm-io/zdm/apiclient"
	"github.com/zdm-io/zdm/eventstore/natscluster"
)

// Fleet is several zdmd sharing one NATS, as the operator guide sets them
// up: one secret key, a name each, every NATS address.
type Fleet struct {
	t      testing.TB
	bin    string
	dir    string
	token  string
	args   [][]string
	listen []string
	Procs  []*Proc
	keep   atomic.Bool // see KeepLogs
}

// NewFleet returns a fleet of zdmd bin run in dir with token; Add starts
// its instances.
// Like every process StartServe starts, each instance's log is kept in
// testout/<test>/ when the test fails.
func NewFleet(t testing.TB, bin, dir, token string) *Fleet {
	return &Fleet{t: t, bin: bin, dir: dir, token: token}
}

// dumpStacks has every live instance print its goroutines to its log
// (SIGQUIT), for the post-mortem of a migration that stopped moving.
func (f *Fleet) dumpStacks() {
	for _, p := range f.Procs {
		if p != nil && p.Cmd.ProcessState == nil {
			_ = p.Cmd.Process.Signal(syscall.SIGQUIT)
		}
	}
	time.Sleep(time.Second)
}

// Add starts one more instance with args (after serve --listen) and
// returns its index.
func (f *Fleet) Add(args ...string) int {
	f.listen = append(f.listen, FreeAddr(f.t))
	f.args = append(f.args, args)
	f.Procs = append(f.Procs, nil)
	i := len(f.Procs) - 1
	f.Start(i)
	return i
}

// Start (re)starts instance i.
func (f *Fleet) Start(i int) {
	f.Procs[i] = StartServe(f.t, f.bin, f.dir, f.listen[i], f.token, f.args[i]...)
	f.Procs[i].keep = &f.keep
}

// KeepLogs keeps every instance's log, killed ones' too, when the test
// ends even if it passes: for a figure worth a look (a long pause).
func (f *Fleet) KeepLogs() { f.keep.Store(true) }

// Driving returns the instance that drives the migrations, or -1; two
// at once fail the test.
func (f *Fleet) Driving() int {
	found := -1
	for i, p := range f.Procs {
		if p == nil || p.Cmd.ProcessState != nil {
			continue
		}
		if r, err := apiclient.New(p.URL, "").Ready(context.Background()); err == nil && r.Drives {
			if found >= 0 {
				f.t.Fatalf("instances %d and %d both drive the migrations", found+1, i+1)
			}
			found = i
		}
	}
	return found
}

// Takeover waits until an instance other than old drives the migrations,
// and returns it and how long that took.
func (f *Fleet) Takeover(old int, within time.Duration) (int, time.Duration) {
	f.t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if d := f.Driving(); d >= 0 && d != old {
			return d, time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.t.Fatalf("no instance took over within %s", within)
	return -1, 0
}

// Any returns a running instance.
func (f *Fleet) Any() *Proc {
	p := f.Running()
	if p == nil {
		f.t.Fatal("no instance runs")
	}
	return p
}

// Running returns a running instance, or nil: for a cleanup, which may
// come after those of the instances restarted during the test.
func (f *Fleet) Running() *Proc {
	for _, p := range f.Procs {
		if p != nil && p.Cmd.ProcessState == nil {
			return p
		}
	}
	return nil
}

// WaitFor polls migration id on any running instance until ok.
func (f *Fleet) WaitFor(id string, within time.Duration, ok func(Migration) bool) Migration {
	f.t.Helper()
	deadline := time.Now().Add(within)
	for {
		var m Migration
		f.Any().Call(f.t, "GET", "/v1/migrations/"+id, nil, &m)
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			f.dumpStacks()
			f.t.Fatalf("migration %s: condition not met within %s: %+v", id, within, m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// KillDriving kills the driving instance, waits for another to take over,
// restarts the killed one and returns the takeover time.
func (f *Fleet) KillDriving(moment string) time.Duration {
	f.t.Helper()
	// A term can be between holders when this is called: a NATS node lost
	// a moment ago takes the lease's bucket through an election longer
	// than the lease, and the driver gives its term up until it is over.
	old, _ := f.Takeover(-1, 30*time.Second)
	f.Procs[old].Kill(f.t)
	next, took := f.Takeover(old, 30*time.Second)
	f.t.Logf("%s: killed zdmd-%d; zdmd-%d took over after %.2fs", moment, old+1, next+1, took.Seconds())
	f.Start(old)
	return took
}

// StartNATSCluster runs a three-node JetStream cluster under dir until the
// test ends (with tls, nats-cluster-tls.conf's), and gives every zdmd the
// test starts one secret key, as instances sharing a NATS need.
func StartNATSCluster(t testing.TB, dir string, tls *natscluster.TLS) *natscluster.Cluster {
	t.Helper()
	var c *natscluster.Cluster
	var err error
	if tls == nil {
		c, err = natscluster.Start(context.Background(), dir, 3)
	} else {
		c, err = natscluster.StartTLS(context.Background(), dir, 3, *tls)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	t.Setenv("ZDM_SECRET_KEY", base64.StdEncoding.EncodeToString(key))
	return c
}

// ReplayValid runs zdmd replay --all on the events where says (a data
// directory or a NATS) and fails unless every history is valid.
func ReplayValid(t testing.TB, bin string, where ...string) {
	t.Helper()
	out, err := exec.Command(bin, append(append([]string{"replay"}, where...), "--all", "--quiet")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "valid") {
		t.Fatalf("replay --all: %v\n%s", err, out)
	}
}
