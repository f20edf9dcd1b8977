package main

import (
	"strings"
	"testing"
	"time"

	"github.com/zdm-io/zdm/domain"
	"github.com/zdm-io/zdm/projections"
)

func TestShowSaysWhereAMigrationStandsAndWhatToDoAfterAFailure(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	lag := 2.5
	deadline := now.Add(49 * time.Hour)
	m := &projections.MigrationView{ID: "m-1", State: domain.StateSyncing, Stage: "sync", SourceClusterID: "c-1",
		Source: domain.ClusterRef{Name: "prod"}, LagSeconds: &lag, SyncDeadline: &deadline}
	m.Target.Name, m.Target.Project = "prod-next", "search"
	m.Progress.RowsCopied, m.Progress.RowsTotal = 1000, 1000
	m.Progress.Collections = []projections.CollectionView{{Database: "default", Collection: "docs", RowsCopied: 1000, RowsTotal: 1000, Done: true}}
	m.Preflight = []byte(`{"copy_mode":"rows","copy_mode_reason":"the source cluster has no storage","notes":["The target lacks users [app] and roles []."]}`)
	m.Notes = []projections.NoteView{{At: now.Add(-time.Hour), Note: "default/docs is loaded with the server's default replicas"}}
	m.Notifications = []domain.NotificationSent{{Kind: domain.NotifyLagUnderThreshold, Recipients: []string{"ops@x.io"},
		Refused: map[string]string{"gone@x.io": "550 5.1.1 no such mailbox"}}}
	out := strings.Join(summary(m, now), "\n")
	for _, want := range []string{"state syncing", "source prod (c-1), target prod-next (project search)", "default.docs", "1,000/1,000 rows",
		"lag 2.5s", "stop the sync by 2026-12-05 11:00 UTC (in 2d 1h)", "copy by rows: the source cluster has no storage",
		"preflight note: The target lacks users [app]", "note (2026-12-03 09:00 UTC): default/docs is loaded with the server's default replicas",
		"email lag_under_threshold refused for good to gone@x.io: 550 5.1.1 no such mailbox"} {
		if !strings.Contains(out, want) {
			t.Errorf("syncing: no %q in\n%s", want, out)
		}
	}
	m.State, m.Stage, m.FailureReason, m.FailureDetail = domain.StateFailed, "sync", "switch_check_failed", "rows 10 on the source, 9 on the target"
	out = strings.Join(summary(m, now), "\n")
	for _, want := range []string{"failed: switch_check_failed rows 10 on the source, 9 on the target",
		"what happened: after the drain, counts, sampled rows or keys differ", "what to do: look for the named keys' writes"} {
		if !strings.Contains(out, want) {
			t.Errorf("failed: no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "stop the sync by") {
		t.Errorf("an ended migration shows a deadline:\n%s", out)
	}
	// A syncing migration's lag sampled long ago is said to be old.
	m.State, m.FailureReason = domain.StateSyncing, ""
	fresh, old := now.Add(-10*time.Second), now.Add(-250*time.Second)
	m.LagSampledAt = &fresh
	if out := strings.Join(summary(m, now), "\n"); strings.Contains(out, "last sampled") {
		t.Errorf("a fresh lag sample is said to be old:\n%s", out)
	}
	m.LagSampledAt = &old
	if out := strings.Join(summary(m, now), "\n"); !strings.Contains(out, "the lag was last sampled 4m 10s ago: no zdmd has sampled it since") {
		t.Errorf("an old lag sample is not said to be old:\n%s", out)
	}
}

func TestDurationsReadWellAtEveryMagnitude(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Millisecond: "850ms", 2500 * time.Millisecond: "2.5s", 250 * time.Second: "4m 10s",
		185 * time.Minute: "3h 5m", 49 * time.Hour: "2d 1h", 69444 * time.Hour: "2893d 12h",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("%s reads %q, want %q", d, got, want)
		}
	}
}

func TestAnEventReadsOnOneLineWithItsDetailsAndWholeNumbers(t *testing.T) {
	raw := []byte(`{"seq":12345678,"at":"2026-12-03T10:17:18.3Z","actor":"zdm","type":"zdm.migration.bulk_copy_progressed.v1",` +
		`"data":{"database":"default","collection":"docs","rows":20000000,"bytes":123456789012}}`)
	got := eventLine(7, raw)
	want := "7\t12345678\t2026-12-03 10:17:18.300\tzdm\tbulk_copy_progressed\tbytes=123456789012 collection=\"docs\" database=\"default\" rows=20000000"
	if got != want {
		t.Errorf("event line\n got %q\nwant %q", got, want)
	}
	// A note is read whole; a report is cut.
	note := strings.Repeat("the target could not load it as the source does; ", 4)
	raw = []byte(`{"seq":9,"at":"2026-12-03T10:17:18Z","actor":"zdm","type":"zdm.migration.noted.v1","data":{"note":"` + note + `"}}`)
	if got := eventLine(3, raw); !strings.HasSuffix(got, "note=\""+note+"\"") {
		t.Errorf("a note cut: %q", got)
	}
	raw = []byte(`{"seq":10,"at":"2026-12-03T10:17:18Z","actor":"zdm","type":"zdm.migration.verified.v1","data":{"report":{"summary":"` + note + `"}}}`)
	if got := eventLine(4, raw); !strings.HasSuffix(got, "...") || len(got) > 200 {
		t.Errorf("a report not cut: %q", got)
	}
}
