package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/dataplane/verify"
	st "github.com/zdm-io/zdm/service/servicetest"
)

// sdkApp is an application written with another Milvus SDK than zdm's,
// run as a process: its output does not depend on timing.
type sdkApp struct {
	name string
	run  func(addr, collection string) *exec.Cmd
}

// otherClients are pymilvus's MilvusClient (the test bed's pymilvus 2.3
// and the newest, 2.6), the Node.js SDK, the Java SDK and a client of
// Milvus's RESTful API (v1) written with Python's standard library. The Node SDK comes from scripts/node-sdk.sh (ZDM_NODE_MODULES),
// the Java application's class path from scripts/java-sdk.sh
// (ZDM_JAVA_CLASSPATH); without either the test skips, or fails under
// ZDM_REQUIRE_INTEGRATION.
func otherClients(t *testing.T, e *env) []sdkApp {
	modules := setBy(t, "ZDM_NODE_MODULES", "scripts/node-sdk.sh installs the Node.js SDK and prints it")
	classpath := setBy(t, "ZDM_JAVA_CLASSPATH", "scripts/java-sdk.sh compiles the Java SDK application and prints its class path")
	newPymilvus := setBy(t, "ZDM_NEW_PYMILVUS", "scripts/test.sh makes a venv with e2e/testdata/pymilvus/requirements.txt and sets it to its python")
	data := filepath.Join(e.bed.Root, "e2e", "testdata")
	return []sdkApp{
		{"pymilvus MilvusClient", func(addr, coll string) *exec.Cmd {
			return exec.Command(e.bed.Python, filepath.Join(data, "milvusclient.py"), addr, coll)
		}},
		{"pymilvus 2.6 MilvusClient", func(addr, coll string) *exec.Cmd {
			return exec.Command(newPymilvus, filepath.Join(data, "milvusclient.py"), addr, coll)
		}},
		{"Node.js SDK", func(addr, coll string) *exec.Cmd {
			cmd := exec.Command("node", filepath.Join(data, "node", "workload.js"), addr, coll)
			cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
			return cmd
		}},
		{"Java SDK", func(addr, coll string) *exec.Cmd {
			return exec.Command("java", "-cp", classpath, "Workload", addr, coll)
		}},
		{"RESTful API v1", func(addr, coll string) *exec.Cmd {
			return exec.Command(e.bed.Python, filepath.Join(data, "rest_v1.py"), addr, coll)
		}},
	}
}

// setBy is the environment variable name, which the script named in how
// sets (milvustest.Missing without it).
func setBy(t *testing.T, name, how string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		milvustest.Missing(t, "%s is not set: %s", name, how)
	}
	return v
}

// outputs runs every application at once, as several applications share
// a proxy, each on its own collection of the phase, and returns what each
// printed, by name.
func outputs(t *testing.T, clients []sdkApp, addr, phase string) map[string]string {
	t.Helper()
	printed := make([][]byte, len(clients))
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() { printed[i], errs[i] = c.run(addr, collName(i, phase)).CombinedOutput() })
	}
	wg.Wait()
	out := map[string]string{}
	for i, c := range clients {
		if errs[i] != nil {
			t.Fatalf("%s on %s (%s): %v\n%s", c.name, addr, collName(i, phase), errs[i], printed[i])
		}
		out[c.name] = string(printed[i])
	}
	return out
}

// TestApplicationsOnOtherSDKsAreServedAlikeThroughTheMigration runs the
// applications, all at once, against the source, through the proxy while
// the migration syncs, and through it after the switch: each answers the
// same every time, the target ends equal to the source before the switch,
// and after it the applications' new collections are on the target only.
func TestApplicationsOnOtherSDKsAreServedAlikeThroughTheMigration(t *testing.T) {
	e := newEnv(t, "")
	clients := otherClients(t, e)
	seed(t, e.bed.Source, datatools.Shape{Databases: 1, DefaultDB: true, Collections: 1, Rows: 1000, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Prefix: "sdk_"})
	direct := outputs(t, clients, e.bed.Source, "direct")
	for _, c := range clients {
		if !strings.Contains(direct[c.name], "count") {
			t.Fatalf("%s printed no count against the source:\n%s", c.name, direct[c.name])
		}
	}
	p := e.serve(t)
	src, _ := e.register(t, p, map[string]any{"proxy_listen": proxyAddr})
	id := start(t, p, src, map[string]any{"lag_threshold_seconds": 5})
	p.WaitFor(t, id, waitTimeout(), func(m st.Migration) bool { return m.State == "syncing" && m.LagSeconds != nil })
	synced := outputs(t, clients, proxyAddr, "sync")
	for _, c := range clients {
		if got := synced[c.name]; got != direct[c.name] {
			t.Errorf("%s through the proxy while the migration syncs answered\n%s\nagainst the source it answered\n%s", c.name, got, direct[c.name])
		}
	}
	p.WaitFor(t, id, waitTimeout(), func(m st.Migration) bool { return m.LagSeconds != nil && *m.LagSeconds < 0.5 })
	verifyUntilEqual(t, e, verify.Options{})
	if code := p.Call(t, "POST", "/v1/migrations/"+id+"/stop-sync", map[string]any{"confirm_writes_stopped": true}, nil); code != 202 {
		t.Fatalf("stop-sync: %d", code)
	}
	p.WaitFor(t, id, 2*time.Minute, func(m st.Migration) bool { return m.State == "switched_over" })
	after := outputs(t, clients, proxyAddr, "after")
	for _, c := range clients {
		if got := after[c.name]; got != direct[c.name] {
			t.Errorf("%s through the proxy after the switch answered\n%s\nagainst the source it answered\n%s", c.name, got, direct[c.name])
		}
	}
	ctx := context.Background()
	target, source := milvustest.Dial(t, e.bed.Target), milvustest.Dial(t, e.bed.Source)
	for i, c := range clients {
		coll := collName(i, "after")
		onTarget, err := target.HasCollection(ctx, "default", coll)
		if err != nil {
			t.Fatal(err)
		}
		onSource, err := source.HasCollection(ctx, "default", coll)
		if err != nil {
			t.Fatal(err)
		}
		if !onTarget || onSource {
			t.Errorf("%s's collection made after the switch: on the target %v, on the source %v; want only on the target", c.name, onTarget, onSource)
		}
	}
}

func collName(client int, phase string) string { return "sdk" + string(rune('a'+client)) + "_" + phase }
