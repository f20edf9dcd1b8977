package integration_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
)

// An application that loads and releases partitions through the proxy
// finds the target loaded as the source is: those calls are replayed.
func TestPartitionLoadsAndReleasesAreReplayed(t *testing.T) {
	b := newSyncBed(t, "m-parts", datatools.Shape{DefaultDB: true, Databases: 1, Dim: 4, PKType: "int64", Index: "none", Shards: 1}, nil)
	script := filepath.Join(b.bed.Root, "dataplane", "integration", "testdata", "partitions.py")
	if out, err := exec.Command(b.bed.Python, script, "write", b.proxy(t)).CombinedOutput(); err != nil {
		t.Fatalf("partitions.py write: %v\n%s", err, out)
	}
	b.apply(t)
	b.drain(t)
	state := func(addr string) string {
		out, err := exec.Command(b.bed.Python, script, "state", addr).CombinedOutput()
		if err != nil {
			t.Fatalf("partitions.py state %s: %v\n%s", addr, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	src, dst := state(b.bed.Source), state(b.bed.Target)
	if src != "_default NotLoad, p1 NotLoad, p2 Loaded" || dst != src {
		t.Errorf("load states: source %q, target %q", src, dst)
	}
	sameThroughZdm(t, b.src, b.dst, "after the replay")
}
