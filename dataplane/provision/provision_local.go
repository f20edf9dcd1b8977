package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/zdm-io/zdm/dataplane/milvus"

	"github.com/zdm-io/zdm/domain"
)

// ServerScript runs scripts/milvus_server.py with the test bed's python.
type ServerScript struct {
	Python string
	Script string
	// Root holds the unpacked binaries and each server's data.
	Root string
}

// LocalProvisioner starts a new Milvus server on this machine for each
// migration: free ports, its own data directory. For demos, tests and
// single-machine setups.
type LocalProvisioner struct {
	script ServerScript
	// FirstPort is where the search for 12 free ports starts.
	firstPort int
}

// NewLocalProvisioner returns a provisioner that uses script.
func NewLocalProvisioner(script ServerScript, firstPort int) *LocalProvisioner {
	if firstPort == 0 {
		firstPort = 20000
	}
	return &LocalProvisioner{script: script, firstPort: firstPort}
}

func serverName(m *domain.Migration) string { return "zdm-" + m.ID }

// Provision starts (or finds, after a restart) the migration's server.
func (p *LocalProvisioner) Provision(ctx context.Context, m *domain.Migration) (domain.Target, error) {
	name := serverName(m)
	base, err := p.basePort(name)
	if err != nil {
		return domain.Target{}, err
	}
	out, err := p.run(ctx, "start", name, "--base-port", strconv.Itoa(base), "--root", p.script.Root)
	if err != nil {
		return domain.Target{}, fmt.Errorf("start local Milvus %s: %w", name, err)
	}
	endpoint := strings.TrimSpace(out)
	c, err := milvus.Dial(ctx, milvus.Endpoint{Address: endpoint})
	if err != nil {
		return domain.Target{}, err
	}
	defer c.Close()
	v, _ := c.Version(ctx)
	// The server runs on this host: its storage is there for a segment
	// copy (imports name local files by absolute path).
	storage, err := filepath.Abs(filepath.Join(p.script.Root, "servers", name, "data"))
	if err != nil {
		return domain.Target{}, err
	}
	return domain.Target{ClusterID: "t-" + m.ID, Name: m.Target.Name, Endpoint: endpoint, Version: v, StoragePath: storage}, nil
}

// Release stops the server and removes its data.
func (p *LocalProvisioner) Release(ctx context.Context, m *domain.Migration) error {
	_, err := p.run(ctx, "stop", serverName(m), "--root", p.script.Root, "--remove")
	return err
}

// basePort keeps the ports a server had before a restart, else finds 12
// free ones.
func (p *LocalProvisioner) basePort(name string) (int, error) {
	data, err := os.ReadFile(filepath.Join(p.script.Root, "servers", name, "server.json"))
	if err == nil {
		var info struct {
			BasePort int `json:"base_port"`
		}
		if json.Unmarshal(data, &info) == nil && info.BasePort > 0 {
			return info.BasePort, nil
		}
	}
	for base := p.firstPort; base < 65000; base += 20 {
		if portsFree(base, 12) {
			return base, nil
		}
	}
	return 0, errors.New("no 12 free ports on 127.0.0.1 for a local Milvus")
}

func portsFree(base, n int) bool {
	for port := base; port < base+n; port++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}

func (p *LocalProvisioner) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, p.script.Python, append([]string{p.script.Script}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", filepath.Base(p.script.Script), args[0], err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
