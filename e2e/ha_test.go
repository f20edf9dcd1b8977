package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/dataplane/milvus"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/natscluster"
	"github.com/zdm-io/zdm/projections"
	st "github.com/zdm-io/zdm/service/servicetest"
)

const (
	haFrontend = "127.0.0.1:19610"
	// haProxyListen is the source's proxy_listen; instance i listens on
	// its port + i (proxy_port_offset), as on hosts of their own they
	// would all listen on the same one.
	haProxyListen = "127.0.0.1:19600"
)

// haRounds is how many migrations TestHAMigrationThroughHAProxyWithKills
// runs, each with three zdmd kills at random moments and the loss of a
// NATS node with its disk: make test runs one, the full trial
// go test ./e2e -run HAMigration -args -ha-rounds=4 (12 zdmd kills).
var haRounds = flag.Int("ha-rounds", 1, "migrations of the HA chaos test, three zdmd kills and one NATS node lost each")

// TestHAMigrationThroughHAProxyWithKills runs migrations on three zdmd
// sharing a three-node NATS cluster, with a client writing through HAProxy
// for the whole of each, and kills the instance driving it at a random
// moment of the copy, of the sync and of the switch, and a NATS node
// (whose store is wiped before it restarts) during the sync. Each
// migration ends switched over, every acknowledged write is on the target
// once, and the history replays valid.
func TestHAMigrationThroughHAProxyWithKills(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("random moments from seed %d", seed)
	rng := mathrand.New(mathrand.NewPCG(uint64(seed), 0))
	for round := 1; round <= *haRounds; round++ {
		t.Run(fmt.Sprintf("round-%d", round), func(t *testing.T) { haRound(t, rng) })
	}
}

func haRound(t *testing.T, rng *mathrand.Rand) {
	e := newEnv(t, "  copy_workers: 2\n  copy_range_rows: 2000\n  copy_page_rows: 1000\n")
	seedForSync(t, e.bed.Source, 10000)
	f, cluster, backends := startHAFleet(t, e, 3)
	st.StartHAProxy(t, haFrontend, backends)
	f.Takeover(-1, 15*time.Second)

	src, _ := e.register(t, f.Procs[0], map[string]any{"proxy_listen": haProxyListen})
	// Every instance opens its endpoint once its view shows the cluster.
	if err := milvus.WaitAnswer(context.Background(), haFrontend, 30*time.Second); err != nil {
		t.Fatalf("no proxy behind HAProxy: %v", err)
	}
	w := startWriter(t, haFrontend, seededTargets(), 60)
	// An application that retries as the SDKs do: an insert sent again
	// after its answer was lost leaves its keys twice on the source.
	rw := startRetryingWriter(t, haFrontend, seededTargets(), 20)
	endpoint := startProbe(t, haFrontend)
	reads := startReader(t, haFrontend, "default", "str_c0")
	time.Sleep(2 * time.Second)
	id := start(t, f.Procs[1], src, map[string]any{"lag_threshold_seconds": 5})
	// Registered after the first instances': it runs before the
	// post-mortem keeps the files it writes, and while they answer unless
	// each was killed and restarted (the restarted ones stop first).
	longPause := false
	t.Cleanup(func() {
		if t.Failed() {
			keepForPostMortem(t, e, w, f.Running(), id)
			keepJournal(t, e, cluster, id)
		}
		if longPause && !t.Failed() {
			e.keepFiles(t) // a failure's post-mortem keeps them
		}
	})

	// Each failure is measured apart: the client's writes go on after
	// one before the next is made.
	recovered := func() {
		back := time.Now()
		for deadline := back.Add(30 * time.Second); w.ackedSince(back) < 10 && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
	}
	var kills []time.Time
	var takeovers []time.Duration
	// What the instances counted of the relayed calls each killed driver
	// took, read before each kill and once the writes went on after it.
	var relayedBefore []map[int][2]int
	var relayedLost [][2]int
	lost := func() {
		resent, failed := lostSince(relayedBefore[len(relayedBefore)-1], relayCounts(f.Procs))
		relayedLost = append(relayedLost, [2]int{resent, failed})
	}
	kill := func(moment string) {
		relayedBefore = append(relayedBefore, relayCounts(f.Procs))
		kills = append(kills, time.Now())
		takeovers = append(takeovers, f.KillDriving(moment))
		if moment != "switch" {
			recovered()
			lost()
		}
	}
	// 45,000 rows in all: killed after 5-85 % of them are copied.
	copied := int64(2250 + rng.IntN(36000))
	f.WaitFor(id, waitTimeout(), func(m st.Migration) bool {
		return m.State == "copying" && m.Progress.RowsCopied >= copied || m.State == "syncing"
	})
	kill("copy")
	f.WaitFor(id, waitTimeout(), func(m st.Migration) bool { return m.State == "syncing" && m.LagSeconds != nil })
	time.Sleep(time.Duration(rng.IntN(4000)) * time.Millisecond)
	kill("sync")
	f.WaitFor(id, waitTimeout(), func(m st.Migration) bool { return m.State == "syncing" && m.LagSeconds != nil })

	// A NATS node is lost with its disk and comes back empty.
	node := rng.IntN(3)
	natsLost := time.Now()
	cluster.Kill(node)
	if err := cluster.Wipe(node); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := cluster.Restart(node); err != nil {
		t.Fatal(err)
	}
	if err := cluster.WaitReady(context.Background(), time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("sync: killed %s, wiped its store and restarted it", cluster.Nodes[node].Name)
	// The writes stalled by the election of the streams the lost node led
	// go on before the switch is asked.
	recovered()
	f.WaitFor(id, waitTimeout(), func(m st.Migration) bool { return m.State == "syncing" && m.LagSeconds != nil })

	time.Sleep(time.Duration(1000+rng.IntN(2000)) * time.Millisecond)
	stopSyncAt := time.Now()
	if code := f.Any().Call(t, "POST", "/v1/migrations/"+id+"/stop-sync", map[string]any{"confirm_writes_stopped": true, "force": true}, nil); code != 202 {
		t.Fatalf("stop-sync: %d", code)
	}
	time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
	kill("switch")
	m := f.WaitFor(id, 2*time.Minute, func(m st.Migration) bool { return m.State == "switched_over" || m.State == "failed" })
	if m.State != "switched_over" {
		t.Fatalf("the migration ended %s: %+v", m.State, m)
	}
	time.Sleep(3 * time.Second) // writes go to the target now
	lost()
	stats, rstats := w.stop(t), rw.stop(t)
	rep, rrep := w.check(t, e.bed.Target), rw.check(t, e.bed.Target)

	var view struct {
		WritePauseMS *float64 `json:"write_pause_ms"`
	}
	f.Any().Call(t, "GET", "/v1/migrations/"+id, nil, &view)
	failures := []time.Time{kills[0], kills[1], natsLost, kills[2]}
	gaps := ackGaps(t, w, failures)
	endpoint.stop()
	away := make([]time.Duration, len(failures))
	for i, at := range failures {
		var next time.Time
		if i+1 < len(failures) {
			next = failures[i+1]
		}
		away[i] = endpoint.away(at, next)
	}
	for i, moment := range []string{"copy", "sync", "switch"} {
		j := min(i+i/2, 3)
		t.Logf("zdmd killed in the %s: saga taken over after %.2fs; HAProxy's endpoint answered no fresh connection's first call for %.2fs; client's longest gap between acknowledged writes after it %s; of the calls other instances had relayed to it, sent again to the next: %d, writes failed: %d",
			moment, takeovers[i].Seconds(), away[j].Seconds(), gaps[j], relayedLost[i][0], relayedLost[i][1])
	}
	t.Logf("NATS node lost in the sync: HAProxy's endpoint answered no fresh connection's first call for %.2fs; client's longest gap between acknowledged writes after it %s; the switch was asked %.2fs after it",
		away[2].Seconds(), gaps[2], stopSyncAt.Sub(natsLost).Seconds())
	pause := "none recorded"
	if view.WritePauseMS != nil {
		pause = fmt.Sprintf("%.0f ms", *view.WritePauseMS)
		// Over the goal: the logs, the history and the journal are kept
		// as for a failure, to see where the time went.
		if longPause = *view.WritePauseMS >= 1000; longPause {
			f.KeepLogs()
			keepForPostMortem(t, e, w, f.Any(), id)
			keepJournal(t, e, cluster, id)
			pause += " (over 1 s: logs kept in testout/)"
		}
	}
	for _, ev := range events(t, f.Any(), id) {
		var sw projections.WritePause
		if ev.Type == "switched_over" && json.Unmarshal(ev.Data, &sw) == nil {
			pause += " (" + sw.String() + ")"
		}
	}
	reads.stop()
	t.Logf("client through HAProxy: %d acknowledged, %d failed (last: %s); switch pause %s; target: %s",
		stats.Acknowledged, stats.Failed, stats.LastErr, pause, rep)
	t.Logf("client retrying as the SDKs do: %d acknowledged, %d sent again after a failed call, %d failed again; target: %s",
		rstats.Acknowledged, rstats.Retried, rstats.Failed, rrep)
	t.Logf("relayed calls sent back by an instance that did not drive, as the instances running at the end counted them: %d", sentBack(f.Procs))
	// A read relayed to a killed instance is sent again to the next; one
	// fails only when the reader's own connection went to the killed one.
	t.Logf("reader through HAProxy: %s", reads)
	for _, ev := range []string{"switched_over", "verified"} {
		if count(eventTypes(t, f.Any(), id), ev) == 0 {
			t.Fatalf("no %s in the history", ev)
		}
	}
	st.ReplayValid(t, e.bin, cluster.zdmdArgs()...)
}

// keepJournal writes, beside the writer's journal, what the migration's
// journal still holds (each entry's header, without its request) and the
// apply positions: a write the source has and the target misses was
// either never journaled, or journaled and not applied.
func keepJournal(t *testing.T, e *env, cluster *tlsCluster, id string) {
	nc, err := cluster.connect()
	if err != nil {
		t.Logf("post-mortem: journal not kept: %v", err)
		return
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, _ := jetstream.New(nc)
	// One JSON object a line: entries, then the apply positions.
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	cons, err := js.OrderedConsumer(ctx, eventstore.JournalStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{capture.JournalPrefix(id) + ">"}})
	if err == nil {
		var batch jetstream.MessageBatch
		for err == nil {
			if batch, err = cons.FetchNoWait(1000); err != nil {
				break
			}
			n := 0
			for m := range batch.Messages() {
				n++
				meta, _ := m.Metadata()
				head, _, _ := bytes.Cut(m.Data(), []byte("\n"))
				var entry any = string(head)
				if json.Valid(head) {
					entry = json.RawMessage(head)
				}
				_ = enc.Encode(map[string]any{"seq": meta.Sequence.Stream, "subject": m.Subject(), "entry": entry})
			}
			if n == 0 {
				break
			}
		}
	}
	if err != nil {
		t.Logf("post-mortem: journal read: %v", err)
	}
	if kv, kerr := js.KeyValue(ctx, "ZDM_APPLY"); kerr == nil {
		if keys, kerr := kv.ListKeys(ctx); kerr == nil {
			for k := range keys.Keys() {
				if v, gerr := kv.Get(ctx, k); gerr == nil {
					_ = enc.Encode(map[string]string{"position": k, "value": string(v.Value())})
				}
			}
		}
	}
	if err := os.WriteFile(filepath.Join(e.dir, "journal.jsonl"), out.Bytes(), 0o644); err != nil {
		t.Logf("post-mortem: journal not kept: %v", err)
	}
}

// startHAFleet starts n zdmd on a three-node NATS cluster secured as
// nats-cluster-tls.conf secures it (mutual TLS from every zdmd), with a
// lease TTL of 2 s; it returns them, the cluster, and where each serves
// the endpoint of a cluster whose proxy_listen is haProxyListen.
func startHAFleet(t *testing.T, e *env, n int) (*st.Fleet, *tlsCluster, []string) {
	tls := milvustest.NewCerts(t).NATSCluster()
	cluster := &tlsCluster{Cluster: st.StartNATSCluster(t, filepath.Join(e.dir, "nats"), &tls), tls: tls}
	base, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	f := st.NewFleet(t, e.bin, e.dir, token)
	var endpoints []string
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("zdmd-%d", i)
		config := filepath.Join(e.dir, name+".yaml")
		st.WriteFile(t, config, "%sproxy_port_offset: %d\n", base, i)
		f.Add(append([]string{"--config", config, "--data-dir", filepath.Join(e.dir, name), "--instance", name}, cluster.zdmdArgs()...)...)
		endpoints = append(endpoints, fmt.Sprintf("127.0.0.1:%d", 19600+i))
	}
	return f, cluster, endpoints
}

// tlsCluster is the three-node NATS cluster of nats-cluster-tls.conf.
type tlsCluster struct {
	*natscluster.Cluster
	tls natscluster.TLS
}

// zdmdArgs make a zdmd (serve, replay) reach the cluster.
func (c *tlsCluster) zdmdArgs() []string {
	return []string{"--nats-url", c.URLs(), "--nats-tls-ca", c.tls.CA, "--nats-tls-cert", c.tls.ClientCert, "--nats-tls-key", c.tls.ClientKey}
}

// connect is a client of the cluster, as a zdmd is.
func (c *tlsCluster) connect() (*nats.Conn, error) {
	return nats.Connect(c.URLs(), append(c.Options(), nats.Timeout(5*time.Second))...)
}

// ackGaps returns, for each failure (in the order they happened), the
// longest time between two acknowledged writes of w that it explains:
// a gap belongs to the last failure before it ended (up to 20 s before),
// and so does a failed write (those the writer journals: every one with
// keys it chose).
func ackGaps(t *testing.T, w *writer, kills []time.Time) []gap {
	data := w.journalBytes()
	var at []time.Time
	gaps := make([]gap, len(kills))
	// after is the failure a moment follows, within 20 s (-1: none).
	after := func(m time.Time) int {
		k := -1
		for j, kill := range kills {
			if kill.Before(m) && m.Sub(kill) < 20*time.Second {
				k = j
			}
		}
		return k
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var a datatools.Ack
		if json.Unmarshal(sc.Bytes(), &a) != nil {
			continue
		}
		if !a.Unsure {
			at = append(at, a.At)
		} else if k := after(a.At); k >= 0 {
			if gaps[k].failed++; gaps[k].firstErr == "" {
				gaps[k].firstErr = a.Err
			}
		}
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	for i := 1; i < len(at); i++ {
		if k := after(at[i]); k >= 0 && at[i].Sub(at[i-1]) > gaps[k].Duration {
			gaps[k].Duration, gaps[k].from = at[i].Sub(at[i-1]), at[i-1].Sub(kills[k])
		}
	}
	return gaps
}

// gap is the longest time between two acknowledged writes after a
// failure, and when it began, from the failure; and the client's writes
// that failed after it, with the first one's error.
type gap struct {
	time.Duration
	from     time.Duration
	failed   int
	firstErr string
}

func (g gap) String() string {
	s := fmt.Sprintf("%.2fs (from %+.2fs to %+.2fs of it); %d writes failed after it", g.Seconds(), g.from.Seconds(), (g.from + g.Duration).Seconds(), g.failed)
	if g.failed > 0 {
		s += fmt.Sprintf(" (the first: %.120s)", g.firstErr)
	}
	return s
}
