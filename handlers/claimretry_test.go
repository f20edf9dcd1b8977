package handlers_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/simulated"
	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/eventstore/estest"
	"github.com/zdm-io/zdm/handlers"
)

// failingRecordLog fails, once, the append of the command whose ID ends
// with suffix: a store that took the step's first command and then could
// not take the next.
type failingRecordLog struct {
	handlers.EventLog
	suffix string
	mu     sync.Mutex
	failed bool
}

func (l *failingRecordLog) Append(ctx context.Context, subject string, expected uint64, b domain.Batch) (uint64, error) {
	l.mu.Lock()
	fail := !l.failed && strings.HasSuffix(b.CommandID, l.suffix)
	l.failed = l.failed || fail
	l.mu.Unlock()
	if fail {
		return 0, errors.New("the store refused the write")
	}
	return l.EventLog.Append(ctx, subject, expected, b)
}

// sparesInTurn offers one registered spare a call, as a pool whose first
// spare became unusable between two tries of the step would.
type sparesInTurn struct {
	*simulated.DataPlane
	mu    sync.Mutex
	order []string
}

func (p *sparesInTurn) Provision(context.Context, *domain.Migration) (domain.Target, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.order) == 0 {
		return domain.Target{}, errors.New("no spare left")
	}
	id := p.order[0]
	p.order = p.order[1:]
	return domain.Target{ClusterID: id, Endpoint: "spare:" + id, Version: "2.3.5", Registered: true}, nil
}

// A provision whose claim of a spare was stored, but not the record of
// its target, is tried again. The second try claimed another spare under
// the same command ID, which the store refuses as another aggregate's:
// every try failed, and the migration with them.
func TestAProvisionTriedAgainAfterItsClaimCanClaimAnotherSpare(t *testing.T) {
	ctx := context.Background()
	store := estest.NewStore(t)
	log := &failingRecordLog{EventLog: store, suffix: "/target-provisioned"}
	clock := &fakeClock{now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	svc := handlers.NewService(handlers.ServiceConfig{Log: log, Clock: clock})
	dp := simulated.New(simulated.Config{})
	pool := &sparesInTurn{DataPlane: dp}
	steps := handlers.StepsOf(domain.ProvisionerSimulated, dp)
	steps.Provisioners = map[string]handlers.Provisioner{domain.ProvisionerPool: pool}
	h := &harness{store: store, svc: svc, clock: clock, steps: steps}
	var ids []string
	for _, name := range []string{"spare-a", "spare-b"} {
		c, err := svc.RegisterCluster(ctx, admin, "reg-"+name, handlers.RegisterCluster{Name: name, Organization: "acme", Project: "p", Endpoint: name + ":19530", Spare: true})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	pool.order = append(pool.order, ids...)
	h.runSaga(t)
	id := h.start(t, domain.ProvisionerPool, "")
	m := h.wait(t, id, domain.StateSyncing)
	if m.TargetCluster.ClusterID != ids[1] {
		t.Fatalf("the migration's target is %q; want the second spare, %s", m.TargetCluster.ClusterID, ids[1])
	}
	// The saga goes on appending meanwhile: the flag is read under the
	// log's lock.
	log.mu.Lock()
	failed := log.failed
	log.mu.Unlock()
	if !failed {
		t.Fatal("the record of the target never failed: the test did not try the step again")
	}
}
