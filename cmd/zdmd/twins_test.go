package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	st "github.com/zdm-io/zdm/service/servicetest"
)

// One Milvus registered twice, and a start of each registration sent to
// two zdmd at the same moment, round after round: each round one
// migration runs and the other start is answered 409 source_busy naming
// the one that runs. Each start passes the check of the twin's lock
// before the other locks often enough that, without the arbitration
// after the lock, both ran.
func TestStartsOfOneMilvusRegisteredTwiceSentToTwoZdmdAtOnceRunOneMigration(t *testing.T) {
	f, _ := natsFleet(t, 2, "50ms")
	f.Takeover(-1, 10*time.Second)
	var ids [2]string
	for i, endpoint := range []string{"Milvus.Example:19530", "milvus.example:19530"} {
		var cl map[string]any
		if code := f.Procs[i].Call(t, "POST", "/v1/clusters", map[string]any{"name": fmt.Sprint("prod-", i), "organization": "acme", "project": "search", "endpoint": endpoint}, &cl); code != 201 {
			t.Fatalf("register: %d %v", code, cl)
		}
		ids[i] = cl["id"].(string)
	}
	// Each instance has taken in both registrations before the starts:
	// what is raced is the locks, not the registry.
	for _, p := range f.Procs {
		for _, id := range ids {
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if code, _, err := p.Send("GET", "/v1/clusters/"+id, nil); err == nil && code == 200 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s does not know cluster %s", p.URL, id)
				}
			}
		}
	}
	const rounds = 4
	for round := range rounds {
		type answer struct {
			code int
			body map[string]any
			err  error
		}
		var answers [2]answer
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				code, data, err := f.Procs[i].Send("POST", "/v1/migrations", map[string]any{"source_cluster_id": ids[i],
					"target": map[string]any{"name": "next", "project": "search", "provisioner": "simulated"}})
				answers[i] = answer{code: code, err: err}
				if err == nil {
					answers[i].err = json.Unmarshal(data, &answers[i].body)
				}
			})
		}
		wg.Wait()
		var running string
		for i, a := range answers {
			if a.err != nil {
				t.Fatalf("round %d, start %d: %v", round, i, a.err)
			}
			if a.code == 202 {
				if running != "" {
					t.Fatalf("round %d: both starts of one Milvus ran (%s and %v)", round, running, a.body["id"])
				}
				running = a.body["id"].(string)
			}
		}
		if running == "" {
			t.Fatalf("round %d: neither start ran: %v", round, answers)
		}
		for i, a := range answers {
			if a.code == 202 {
				continue
			}
			text := fmt.Sprint(a.body)
			if a.code != 409 || !strings.Contains(text, "source_busy") || !strings.Contains(text, running) || !strings.Contains(text, ids[1-i]) {
				t.Fatalf("round %d, the start that lost: %d %s, want 409 source_busy naming %s and %s", round, a.code, text, running, ids[1-i])
			}
		}
		if code := f.Any().Call(t, "POST", "/v1/migrations/"+running+"/cancel", nil, nil); code != 202 {
			t.Fatalf("round %d: cancel: %d", round, code)
		}
		f.WaitFor(running, 20*time.Second, func(m st.Migration) bool { return m.State == "cancelled" })
		for _, id := range ids {
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				var c map[string]any
				if f.Any().Call(t, "GET", "/v1/clusters/"+id, nil, &c); c["status"] == "Running" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("round %d: cluster %s still held after the cancel", round, id)
				}
			}
		}
	}
}
