package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cpuRow is CPU per row, in microseconds.
type cpuRow struct{ self, source, target float64 }

// cpuUse is CPU time used by this process and by the test bed's two
// servers (0 for a server whose process is not found: one not started by
// scripts/milvus-up.sh).
type cpuUse struct{ self, source, target time.Duration }

func cpuNow() cpuUse {
	return cpuUse{self: processCPU(), source: serverCPU("source"), target: serverCPU("target")}
}

func (u cpuUse) since(b cpuUse) cpuUse {
	return cpuUse{self: u.self - b.self, source: u.source - b.source, target: u.target - b.target}
}

// perRow is d per row of n rows, in microseconds.
func perRow(d time.Duration, n int64) float64 { return float64(d.Microseconds()) / float64(n) }

// serverStats finds, once, the /proc stat file of each test-bed server
// ("" for one not started by scripts/milvus-up.sh).
var serverStats = sync.OnceValue(func() map[string]string {
	root := bedRoot()
	out := map[string]string{}
	for _, name := range []string{"source", "target"} {
		if pid, err := os.ReadFile(filepath.Join(root, "servers", name, "milvus.pid")); err == nil {
			out[name] = "/proc/" + strings.TrimSpace(string(pid)) + "/stat"
		}
	}
	return out
})

// settle waits until both test-bed servers are idle (each used under a
// tenth of a core over the last second), at most a minute, and returns
// how long it waited. A server goes on working after a write returns
// (flushes, sealing, index builds, dropping the last run's collection);
// without the wait, that work lands in whichever side is timed next.
func settle() (waited time.Duration, idle bool) {
	return settleOn(func() []time.Duration { u := cpuNow(); return []time.Duration{u.source, u.target} })
}

// settleOn is settle for the processes whose CPU times cpu reads.
func settleOn(cpu func() []time.Duration) (waited time.Duration, idle bool) {
	const window, quiet = time.Second, 100 * time.Millisecond
	t0 := time.Now()
	prev := cpu()
	for time.Since(t0) < time.Minute {
		time.Sleep(window)
		now := cpu()
		busy := false
		for i := range now {
			busy = busy || now[i]-prev[i] >= quiet
		}
		prev = now
		if !busy {
			return time.Since(t0), true
		}
	}
	return time.Since(t0), false
}

// waits adds up the settle waits of a run, and how many ended idle.
type waits struct {
	total     time.Duration
	idle, all int
}

func (w *waits) settle() {
	d, idle := settle()
	w.total += d
	w.all++
	if idle {
		w.idle++
	}
}

func (w waits) String() string {
	return fmt.Sprintf("%.1f s in all; %d of %d waits found both servers idle (under 0.1 s of CPU a second), the others gave up after a minute",
		w.total.Seconds(), w.idle, w.all)
}

// serverCPU reads the CPU time of a test-bed server from /proc.
func serverCPU(name string) time.Duration {
	path := serverStats()[name]
	if path == "" {
		return 0
	}
	return statCPU(path)
}

// pidCPU is the CPU time of the processes pids.
func pidCPU(pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		sum += statCPU(fmt.Sprintf("/proc/%d/stat", pid))
	}
	return sum
}

// statCPU reads a process's CPU time from its /proc stat file.
func statCPU(path string) time.Duration {
	stat, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// Fields after the command's closing parenthesis: state is the first,
	// user and system time in clock ticks (1/100 s) the 12th and 13th.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	user, _ := strconv.ParseInt(f[11], 10, 64)
	sys, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(user+sys) * 10 * time.Millisecond
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	must(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bedRoot is where scripts/milvus-up.sh keeps the test bed's servers.
func bedRoot() string {
	if root := os.Getenv("ZDM_MILVUS_ROOT"); root != "" {
		return root
	}
	return ".cache/milvus"
}
