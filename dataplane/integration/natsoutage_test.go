package integration_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zdm-io/zdm"
	"github.com/zdm-io/zdm/cmd/zdmd/datatools"
	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
	"github.com/zdm-io/zdm/eventstore"
	"github.com/zdm-io/zdm/eventstore/estest"
)

// restartable is a NATS server on a loopback port, configured by conf,
// that a test stops and starts again on the same port and store.
type restartable struct {
	dir, conf, listen string
	e                 *eventstore.Embedded
}

func startNATS(t *testing.T, conf string) *restartable {
	t.Helper()
	n := &restartable{dir: t.TempDir(), conf: conf, listen: "127.0.0.1:0"}
	n.start(t)
	n.listen = strings.TrimPrefix(n.e.ClientURL(), "nats://")
	t.Cleanup(n.stop)
	return n
}

func (n *restartable) start(t *testing.T) {
	t.Helper()
	e, err := eventstore.StartEmbedded(eventstore.EmbeddedConfig{Config: n.conf, DataDir: n.dir, Listen: n.listen})
	if err != nil {
		t.Fatal(err)
	}
	n.e = e
}

func (n *restartable) stop() {
	if n.e != nil {
		n.e.Close()
		n.e = nil
	}
}

// store opens the event store on a connection that reconnects for ever,
// as zdmd's does.
func (n *restartable) store(t *testing.T) *eventstore.Store {
	t.Helper()
	return estest.StoreAt(t, "nats://"+n.listen, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
}

// storedFailures fails migrations the way zdmd does: by storing the
// failure in NATS, which it cannot do while NATS is away.
type storedFailures struct{ kv *eventstore.KV }

func (f storedFailures) reason(t *testing.T, id string) string {
	t.Helper()
	v, err := f.kv.Get(context.Background(), id)
	if errors.Is(err, eventstore.ErrKeyNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(v)
}

func TestNATSStoppedMidSyncNeverAcknowledgesAnUnjournaledWrite(t *testing.T) {
	n := startNATS(t, zdm.NATSConfig)
	store := n.store(t)
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 8, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "down_"}
	b := newSyncBedOn(t, store, "m-down", shape, nil)
	f := storedFailures{estest.KV(t, store, "TEST_FAILURES")}
	addr, capture := b.captureOn(t, b.journal, f)
	b.apply(t)
	answers, stop := writers(milvustest.Dial(t, addr), shape, "down_db0", "down_c0", 4, 5, 0)
	waitFor(t, "40 writes before the outage", func() bool { return len(acknowledged(answers())) >= 200 })
	n.stop()
	stopped := time.Now()
	waitFor(t, "writes answered while NATS is down", func() bool { return len(since(answers(), stopped, nil)) >= 4 })
	restarted := time.Now()
	n.start(t)
	waitFor(t, "writes acknowledged again after NATS is back", func() bool { return len(since(answers(), restarted, ok)) >= 20 })
	all := stop()
	refused := 0
	for _, a := range all {
		if a.asked.After(stopped) && a.at.Before(restarted) {
			if a.err == nil {
				t.Fatalf("a write asked and answered while NATS was down was acknowledged: keys %v", a.keys[:1])
			}
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("no write was answered while NATS was down")
	}
	capture.Heartbeat(context.Background()) // records a failure NATS could not take before
	b.settled(t, f, "down_db0", "down_c0", all)
}

func TestAFullStoreRefusesWritesUntilTheJournalIsTrimmed(t *testing.T) {
	// A store of 4 MB; a write of 100 rows of 128 floats is about 55 KB.
	const storeBytes = 4 << 20
	conf := strings.Replace(zdm.NATSConfig, "max_file_store: 100GB", "max_file_store: 4MB", 1)
	if conf == zdm.NATSConfig {
		t.Fatal("nats.conf no longer sets max_file_store: 100GB")
	}
	n := startNATS(t, conf)
	store := n.store(t)
	shape := datatools.Shape{Databases: 1, Collections: 1, Rows: 10, Dim: 128, PKType: "int64", Index: "FLAT", Load: true, Shards: 1, Prefix: "fill_"}
	b := newSyncBedOn(t, store, "m-fill", shape, nil)
	f := storedFailures{estest.KV(t, store, "TEST_FAILURES")}
	addr, _ := b.captureOn(t, b.journal, f)
	answers, stop := writers(milvustest.Dial(t, addr), shape, "fill_db0", "fill_c0", 2, 100, 0)
	// No applier yet: the journal fills the store, and writes are refused.
	waitFor(t, "a write refused by the full store", func() bool {
		for _, a := range answers() {
			if a.err != nil {
				return true
			}
		}
		return false
	})
	full := time.Now()
	for _, a := range answers() {
		if a.err != nil {
			t.Logf("refused once the store was full: %v", a.err)
			break
		}
	}
	// The applier applies and trims what it applied: writes go on, and
	// in all the journal takes several times the store's size.
	b.applier.TrimEvery(100 * time.Millisecond)
	b.apply(t)
	waitFor(t, "twice the store in rows acknowledged after the store was full", func() bool {
		rows := len(acknowledged(since(answers(), full, ok)))
		return rows*(128*4+50) > 2*storeBytes
	})
	all := stop()
	b.settled(t, f, "fill_db0", "fill_c0", all)
}
