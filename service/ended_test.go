package service

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm/dataplane/capture"
	"github.com/zdm-io/zdm/domain"
)

// A term's start routes a switched source's calls from the migration's
// mark, without reading its events: prime read every migration ever run
// before any proxy took a call, so every takeover took longer as the
// history grew. The migration here has an event no aggregate takes, so
// a read of it fails: the mark alone must route it.
func TestATermRoutesAFinishedMigrationFromItsMark(t *testing.T) {
	ctx := context.Background()
	m, _ := simulatedMain(t, ctx)
	defer m.Close()
	logger := m.logger
	journal, err := m.store.OpenJournalOn(ctx, m.nc)
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := domain.MigrationStream("m-old")
	unreadable := domain.Batch{CommandID: "c-1", At: time.Now(), Events: []domain.Event{domain.SwitchedOver{TargetEndpoint: "target:19530"}}}
	if _, err := m.store.Append(ctx, subject, 0, unreadable); err != nil {
		t.Fatal(err)
	}
	ps := &proxies{m: m, capture: capture.NewCapture(journal, m.service, logger)}
	if err := ps.prime(ctx); err == nil || !strings.Contains(err.Error(), "m-old") {
		t.Fatalf("prime of a migration whose events cannot be read, with no mark: %v, want its read's error", err)
	}

	if err := m.ended.MarkEnded(ctx, &domain.Migration{ID: "m-new", State: domain.StateSyncing}); err == nil {
		t.Fatal("a running migration was marked ended")
	}
	ended := &domain.Migration{ID: "m-old", State: domain.StateSwitchedOver, Source: domain.ClusterRef{ID: "cl-src"},
		Switch: domain.SwitchedOver{TargetEndpoint: "target:19530"}}
	if err := m.ended.MarkEnded(ctx, ended); err != nil {
		t.Fatal(err)
	}
	ps = &proxies{m: m, capture: capture.NewCapture(journal, m.service, logger)}
	if err := ps.prime(ctx); err != nil {
		t.Fatalf("prime with the migration marked: %v", err)
	}
	if got := ps.capture.RouteOf("cl-src"); got != "target:19530" {
		t.Fatalf("the switched source routes to %q, want target:19530", got)
	}
	ids, err := m.ended.EndedIDs(ctx)
	if err != nil || !ids["m-old"] || len(ids) != 1 {
		t.Fatalf("marked: %v, %v; want m-old alone", ids, err)
	}
}
