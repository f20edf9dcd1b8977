package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/zdm-io/zdm/adapters/haproxy"
	"github.com/zdm-io/zdm/apiclient"
	"github.com/zdm-io/zdm/eventstore/natscluster"
)

// fleet is make demo-ha's zdmd: three instances on a three-node NATS
// cluster, behind HAProxy.
type fleet struct {
	nats  *natscluster.Cluster
	lb    *haproxy.Process
	args  [][]string
	env   []string
	apis  []string
	logs  []string
	procs []*exec.Cmd
	kills []string
}

// startFleet starts the cluster, the instances and HAProxy; c.proxy is
// HAProxy's frontend, instance i's proxy listens on proxyBase's port + i.
func startFleet(ctx context.Context, c config, cfgText string, proxyBase int) (*fleet, error) {
	say("== 2. start three NATS nodes, three zdmd and HAProxy on %s in front of their proxies", c.proxy)
	bin := haproxy.Path()
	if bin == "" {
		return nil, fmt.Errorf("haproxy is missing: scripts/haproxy.sh installs it")
	}
	cluster, err := natscluster.Start(ctx, filepath.Join(c.work, "nats"), 3)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	f := &fleet{nats: cluster,
		env: append(os.Environ(), "ZDM_ADMIN_TOKEN=demo-admin", "ZDM_SECRET_KEY="+base64.StdEncoding.EncodeToString(key))}
	var backends []string
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("zdmd-%d", i)
		cfg := filepath.Join(c.work, name+".yaml")
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf("%sproxy_port_offset: %d\n", cfgText, i)), 0o600); err != nil {
			f.stop()
			return nil, err
		}
		api := fmt.Sprintf("127.0.0.1:%d", 18480+i)
		f.apis = append(f.apis, api)
		f.logs = append(f.logs, filepath.Join(c.work, name+".log"))
		f.args = append(f.args, []string{"serve", "--config", cfg, "--data-dir", filepath.Join(c.work, name), "--listen", api,
			"--nats-url", cluster.URLs(), "--instance", name, "--log-level", "warn"})
		f.procs = append(f.procs, nil)
		if err := f.start(c.zdmd, i-1); err != nil {
			f.stop()
			return nil, err
		}
		backends = append(backends, fmt.Sprintf("127.0.0.1:%d", proxyBase+i))
	}
	if f.lb, err = haproxy.Start(ctx, bin, c.work, c.proxy, backends); err != nil {
		f.stop()
		return nil, err
	}
	return f, nil
}

func (f *fleet) start(bin string, i int) error {
	cmd := exec.Command(bin, f.args[i]...)
	cmd.Env = f.env
	logf, err := os.OpenFile(f.logs[i], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	f.procs[i] = cmd
	return nil
}

// driving is the instance holding the saga's lease (-1: none yet).
func (f *fleet) driving() int {
	for i, api := range f.apis {
		if r, err := apiclient.New("http://"+api, "").Ready(context.Background()); err == nil && r.Drives {
			return i
		}
	}
	return -1
}

// killDriving SIGKILLs the driving instance, waits for another to take
// over and starts the killed one again.
func (f *fleet) killDriving(bin, moment string) error {
	old := f.driving()
	if old < 0 {
		return fmt.Errorf("no zdmd drives the migration")
	}
	_ = f.procs[old].Process.Signal(syscall.SIGKILL)
	_ = f.procs[old].Wait()
	killed := time.Now()
	for {
		if d := f.driving(); d >= 0 && d != old {
			took := time.Since(killed)
			f.kills = append(f.kills, fmt.Sprintf("zdmd-%d killed %s, zdmd-%d took over after %.1fs", old+1, moment, d+1, took.Seconds()))
			say("   ** killed zdmd-%d (SIGKILL) %s; zdmd-%d took over after %.1fs", old+1, moment, d+1, took.Seconds())
			break
		}
		if time.Since(killed) > time.Minute {
			return fmt.Errorf("no zdmd took over within a minute of the kill")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := f.start(bin, old); err != nil {
		return err
	}
	// Back in service (standing by) before the demo asks it anything.
	if err := apiclient.New("http://"+f.apis[old], "").WaitReady(context.Background(), time.Minute); err != nil {
		return fmt.Errorf("%w; see %s", err, f.logs[old])
	}
	return nil
}

func (f *fleet) stop() {
	if f.lb != nil {
		f.lb.Stop()
	}
	for _, p := range f.procs {
		if p != nil && p.ProcessState == nil {
			_ = p.Process.Signal(syscall.SIGTERM)
			_ = p.Wait()
		}
	}
	f.nats.Stop()
}
