package console_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zdm-io/zdm/service"
	st "github.com/zdm-io/zdm/service/servicetest"
)

func startServer(t *testing.T) *st.Server {
	cfg := st.Config(t.TempDir())
	// Slow enough to watch each stage; the lag starts far above the
	// threshold and halves every 400 ms, so stop-sync is first refused
	// and, some ten seconds later, accepted.
	cfg.Simulated = service.SimulatedShape{Collections: 2, RangesPerCollection: 4, RowsPerRange: 25000,
		RangeDelay: 600 * time.Millisecond, LagStart: 1e9, LagStep: 400 * time.Millisecond}
	s := st.Start(t, cfg)
	r := s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, map[string]any{
		"name": "prod", "organization": "acme", "project": "search", "endpoint": "10.0.0.5:19530",
		"username": "root", "password": "s3cret-pass"})
	if r.Status != 201 {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	return s
}

func TestConsoleDrivesAMigration(t *testing.T) {
	s := startServer(t)
	b := newBrowser(t, s.URL)

	// Sign-in: a wrong token is refused in words, the right one is kept
	// in the tab, never in the URL.
	b.run(chromedp.WaitVisible(chromedp.ID("token")), chromedp.SetValue(chromedp.ID("token"), "wrong"), chromedp.Click(chromedp.ID("signin-button")))
	b.until("the refused token", `document.querySelector('[data-error="token"]').textContent.includes("not accepted")`, 10*time.Second)
	b.signIn(st.OrgAdminToken)
	url := eval[string](b, `location.href`)
	if strings.Contains(url, st.OrgAdminToken) {
		t.Fatalf("token in the URL: %s", url)
	}

	// Clusters: name, scope, endpoint, status; no credentials anywhere.
	b.run(chromedp.Click(chromedp.CSS(`#nav a[data-nav="clusters"]`)))
	b.until("the cluster row", `document.querySelector("#clusters tr[data-cluster]") && document.querySelector("#clusters").innerText.includes("Running")`, 10*time.Second)
	if txt := b.text(); !strings.Contains(txt, "acme / search") || !strings.Contains(txt, "10.0.0.5:19530") || strings.Contains(txt, "s3cret") {
		t.Fatalf("clusters page:\n%s", txt)
	}
	b.screenshot("0-clusters")

	// The start form shows the API's validation error next to its field,
	// and starts nothing.
	b.run(chromedp.Click(chromedp.CSS(`#nav a[data-nav="migrations"]`)))
	b.until("the source choices", `document.querySelectorAll("#f-source_cluster_id option").length > 1`, 10*time.Second)
	sourceID := eval[string](b, `document.querySelectorAll("#f-source_cluster_id option")[1].value`)
	// Only the provisioners this zdmd has are offered: the simulated one.
	b.until("the provisioner choices", `document.querySelectorAll("#f-target-provisioner option").length > 0`, 10*time.Second)
	if got := eval[string](b, `[...document.querySelectorAll("#f-target-provisioner option")].map(o => o.value).join(",")`); got != "simulated" {
		t.Fatalf("provisioners offered: %q", got)
	}
	b.run(chromedp.SetValue(chromedp.ID("f-source_cluster_id"), sourceID),
		chromedp.SetValue(chromedp.ID("f-target-name"), "prod-new"),
		chromedp.SetValue(chromedp.ID("f-target-project"), "nope"),
		chromedp.SetValue(chromedp.ID("f-target-provisioner"), "simulated"),
		chromedp.Click(chromedp.ID("start-button")))
	b.until("the field error", `document.querySelector('[data-error="target.project"]').textContent.includes("not a project")`, 10*time.Second)
	b.screenshot("1-form-error")
	if r := s.Do(t, "GET", "/v1/migrations", st.AdminToken, nil).JSON(t); len(r["migrations"].([]any)) != 0 {
		t.Fatalf("a refused form started a migration: %v", r)
	}
	b.run(chromedp.SetValue(chromedp.ID("f-target-project"), "search"), chromedp.SetValue(chromedp.ID("f-options-copy_mode"), "segments"),
		chromedp.Click(chromedp.ID("start-button")))
	b.until("the migration page", `location.hash.startsWith("#/migrations/m")`, 10*time.Second)
	hash := eval[string](b, `location.hash`)
	id := strings.TrimPrefix(hash, "#/migrations/")

	// Copying: progress per collection and in total.
	b.until("copy progress", `document.querySelector("#state .copying") && document.querySelectorAll("#progress tr[data-collection]").length == 2 && /^Total\s+[1-9]/.test(document.querySelector("#progress-total").innerText)`, 20*time.Second)
	// The preflight's copy mode, and why.
	b.until("the copy mode", `/^by segments \(the simulated data plane moves no data\)/.test((document.getElementById("copy-mode") || {innerText: ""}).innerText)`, 10*time.Second)
	// The row copy's rate limit changes while the copy runs.
	b.run(chromedp.SetValue(chromedp.ID("rate-limit"), "5000"), chromedp.Click(chromedp.ID("rate-button")))
	b.until("the new rate limit", `document.getElementById("action-result").innerText.includes("5,000 rows/s")`, 10*time.Second)
	if opts := s.Do(t, "GET", "/v1/migrations/"+id, st.AdminToken, nil).JSON(t)["options"].(map[string]any); opts["copy_rate_limit"] != float64(5000) {
		t.Fatalf("the rate limit after the console set it: %v", opts["copy_rate_limit"])
	}
	// A segment copy says how many segments and bytes it staged.
	b.until("the segments staged", `/Segments staged on the target: [1-9][0-9,]* \([0-9.]+ MiB\)/.test((document.getElementById("segments-copied") || {}).innerText || "")`, 20*time.Second)
	// What the target could not do as the source did is noted, and the
	// page lists it with its time.
	note := "search/docs is loaded with the server's default replicas: the target could not load the 2 replicas it has on the source"
	if err := s.Service().NoteMigration(context.Background(), id, note); err != nil {
		t.Fatal(err)
	}
	b.until("the note", `(document.getElementById("notes") || {innerText: ""}).innerText.includes("could not load the 2 replicas")`, 10*time.Second)
	b.screenshot("2-copying")

	// Syncing: the lag as a number and a chart with points; stop-sync is
	// disabled until the box is ticked, then refused in words.
	b.until("the lag chart", `document.querySelector("#state .syncing") && document.querySelectorAll("#lag-chart circle").length >= 2`, 30*time.Second)
	if !eval[bool](b, `document.getElementById("stop-sync").disabled`) {
		t.Fatal("stop-sync enabled before the confirmation box is ticked")
	}
	b.run(chromedp.Click(chromedp.ID("confirm-stopped")))
	b.until("stop-sync enabled", `!document.getElementById("stop-sync").disabled`, 5*time.Second)
	b.screenshot("3-syncing")
	b.run(chromedp.Click(chromedp.ID("stop-sync")))
	b.until("the refusal", `document.getElementById("action-result").innerText.includes("Refused") && document.getElementById("action-result").innerText.includes("lag")`, 10*time.Second)
	b.screenshot("4-refused")

	// Back button and reload keep the page and the sign-in.
	b.run(chromedp.Click(chromedp.CSS(`#nav a[data-nav="clusters"]`)))
	b.until("the clusters page", `location.hash == "#/clusters" && document.querySelector("#clusters tr")`, 10*time.Second)
	// history.back() is what the browser's back button does.
	eval[any](b, `history.back()`)
	b.until("the migration page after back", `location.hash == "`+hash+`" && document.querySelector("#state .badge")`, 10*time.Second)
	b.run(chromedp.Reload())
	b.until("the migration page after reload", `location.hash == "`+hash+`" && document.querySelector("#state .badge") && document.getElementById("who").textContent.includes("olga")`, 10*time.Second)

	// A viewer sees the same page and can press nothing.
	v := b.tab()
	v.signIn(st.ViewerToken)
	v.run(chromedp.Navigate(s.URL + "/" + hash))
	v.until("the migration for the viewer", `document.querySelector("#state .badge") && document.querySelectorAll("#events tr").length > 0`, 10*time.Second)
	if enabled := eval[[]string](v, enabledButtons); len(enabled) != 0 {
		t.Fatalf("viewer can press %v on the migration page", enabled)
	}
	v.run(chromedp.Navigate(s.URL + "/#/migrations"))
	v.until("the list for the viewer", `document.querySelector("#migrations tr[data-migration]")`, 10*time.Second)
	if enabled := eval[[]string](v, enabledButtons); len(enabled) != 0 {
		t.Fatalf("viewer can press %v on the migrations page", enabled)
	}
	// Nor can a scrape token, which reads /metrics and nothing else.
	sc := b.tab()
	sc.signIn(st.MetricsToken)
	sc.run(chromedp.Navigate(s.URL + "/#/migrations"))
	sc.until("the list for a scrape token, refused", `document.querySelector("main .card") && document.querySelector("main").innerText.includes("/metrics only")`, 10*time.Second)
	if enabled := eval[[]string](sc, enabledButtons); len(enabled) != 0 {
		t.Fatalf("a scrape token can press %v on the migrations page", enabled)
	}

	// Once the lag is under the threshold the same button stops the sync;
	// the switch ends with the target's connection details.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		lag, ok := s.Do(t, "GET", "/v1/migrations/"+id, st.AdminToken, nil).JSON(t)["lag_seconds"].(float64)
		if ok && lag < 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag never fell under the threshold (last %v)", lag)
		}
	}
	b.run(chromedp.Click(chromedp.ID("confirm-stopped")))
	b.until("stop-sync enabled", `!document.getElementById("stop-sync").disabled`, 5*time.Second)
	b.run(chromedp.Click(chromedp.ID("stop-sync")))
	b.until("the switch", `document.querySelector("#state .switched_over") && document.getElementById("target-endpoint") && document.getElementById("target-endpoint").textContent.length > 0`, 30*time.Second)
	// The history reads in words, newest first, its steps numbered in
	// order, each detail laid out; numbers and durations read well.
	b.until("the history", `document.querySelector("#events tr").dataset.step == "switched_over"`, 10*time.Second)
	history := eval[string](b, `document.getElementById("events").innerText`)
	for _, want := range []string{"Switched over to the target", "Copy finished", "Clusters compared", "Migration requested", "target endpoint"} {
		if !strings.Contains(history, want) {
			t.Errorf("the history does not say %q:\n%s", want, history)
		}
	}
	if !regexp.MustCompile(`bytes\s+[0-9.]+ (KiB|MiB|GiB)`).MatchString(history) {
		t.Errorf("the history does not give a segment step's bytes in KiB, MiB or GiB:\n%s", history)
	}
	if strings.Contains(history, "zdm.migration.") || strings.Contains(history, "{\"") {
		t.Errorf("the history shows raw event types or JSON:\n%s", history)
	}
	if first, last := eval[int](b, `+document.querySelector("#events tr td").innerText`), eval[int](b, `+[...document.querySelectorAll("#events tr")].pop().querySelector("td").innerText`); last != 1 || first <= last {
		t.Errorf("the steps are numbered %d (top) to %d (bottom), want the newest on top and the first numbered 1", first, last)
	}
	// The lag started at a billion seconds: it reads in years, on a
	// logarithmic axis, never in exponent form.
	if scale := eval[string](b, `document.getElementById("lag-chart").dataset.scale`); scale != "log" {
		t.Errorf("the lag chart's scale is %q, want log for a lag over nine orders of magnitude", scale)
	}
	page := b.text() + eval[string](b, `document.getElementById("lag-chart").textContent`)
	if strings.Contains(page, "e+") || strings.Contains(page, "69444") || strings.Contains(page, "NaN") || strings.Contains(page, "undefined") {
		t.Errorf("the page shows a number in exponent form, in thousands of hours or not at all:\n%s", page)
	}
	// The check after the copy, taken while the source was written, says
	// the sync replays what it missed; it is no alarm.
	if v := eval[string](b, `document.getElementById("verification").innerText`); !strings.Contains(v, "the sync replays those writes") || strings.Contains(v, "DIFFERENT") {
		t.Errorf("the verification after the copy reads %q", v)
	}
	b.screenshot("5-switched-over")

	// Readable on a phone: nothing wider than the screen.
	b.run(chromedp.EmulateViewport(390, 844))
	b.until("a rendered page", `document.querySelector("#state .badge")`, 5*time.Second)
	overflow := eval[bool](b, `document.documentElement.scrollWidth > window.innerWidth + 1`)
	b.screenshot("6-phone")
	if overflow {
		t.Fatal("the migration page is wider than a phone's screen")
	}
}

func TestConsoleCancels(t *testing.T) {
	s := startServer(t)
	var src string
	for _, c := range s.Do(t, "GET", "/v1/clusters", st.AdminToken, nil).JSON(t)["clusters"].([]any) {
		src = c.(map[string]any)["id"].(string)
	}
	r := s.Do(t, "POST", "/v1/migrations", st.OrgAdminToken, map[string]any{"source_cluster_id": src,
		"target": map[string]any{"name": "copy", "project": "search", "provisioner": "simulated"}})
	if r.Status != 202 {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["id"].(string)
	// A second source and its migration, started after the first.
	r = s.Do(t, "POST", "/v1/clusters", st.OrgAdminToken, map[string]any{
		"name": "prod-2", "organization": "acme", "project": "search", "endpoint": "10.0.0.6:19530"})
	if r.Status != 201 {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	r = s.Do(t, "POST", "/v1/migrations", st.OrgAdminToken, map[string]any{"source_cluster_id": r.JSON(t)["id"],
		"target": map[string]any{"name": "copy-2", "project": "search", "provisioner": "simulated"}})
	if r.Status != 202 {
		t.Fatalf("start: %d %s", r.Status, r.Body)
	}
	second := r.JSON(t)["id"].(string)
	b := newBrowser(t, s.URL)
	b.run(chromedp.Navigate(fmt.Sprintf("%s/#/migrations/%s", s.URL, id)))
	// Signing in from a deep link lands on that page.
	b.signIn(st.ProjectAdminToken)
	b.until("the migration page", `document.querySelector("#state .badge")`, 10*time.Second)
	b.run(chromedp.Click(chromedp.ID("cancel")))
	b.run(chromedp.WaitVisible(chromedp.ID("cancel-confirm")), chromedp.Click(chromedp.ID("cancel-confirm")))
	b.until("the cancelled state", `document.querySelector("#state .cancelled") && document.getElementById("summary").innerText.includes("Cancelled by pete")`, 15*time.Second)
	if enabled := eval[[]string](b, enabledButtons); len(enabled) != 0 {
		t.Fatalf("buttons still enabled on a cancelled migration: %v", enabled)
	}
	// A cancelled migration has no rate, ETA or lag, and one banner.
	total := eval[string](b, `document.getElementById("progress-total").innerText`)
	if strings.Contains(total, "/s") || strings.Contains(total, " s") || strings.Contains(total, "min") {
		t.Errorf("a cancelled migration shows a rate or an ETA: %q", total)
	}
	if n := eval[int](b, `document.querySelectorAll("#summary .notice").length`); n != 1 {
		t.Errorf("a cancelled migration shows %d banners, want 1", n)
	}
	if lag := eval[string](b, `document.getElementById("lag").innerText`); lag != "—" {
		t.Errorf("a cancelled migration shows a lag of %q", lag)
	}
	b.screenshot("7-cancelled")

	// Lists are newest first, each migration's source and target by name.
	b.run(chromedp.Navigate(s.URL + "/#/migrations"))
	b.until("both migrations", `document.querySelectorAll("#migrations tr[data-migration]").length == 2`, 10*time.Second)
	if top := eval[string](b, `document.querySelector("#migrations tr[data-migration]").dataset.migration`); top != second {
		t.Errorf("the newest migration %s is not first (%s is)", second, top)
	}
	if row := eval[string](b, `document.querySelector("#migrations tr[data-migration]").innerText`); !strings.Contains(row, "prod-2 → copy-2") {
		t.Errorf("the newest migration's row does not name its source and target: %q", row)
	}
	// The list shows what runs, or what ended.
	for state, want := range map[string]string{"running": second, "ended": id} {
		eval[bool](b, `(() => { const s = document.getElementById("list-state"); s.value = "`+state+`"; return s.dispatchEvent(new Event("change")); })()`)
		b.until("the "+state+" migration alone", `[...document.querySelectorAll("#migrations tr[data-migration]")].map((r) => r.dataset.migration).join() == "`+want+`"`, 10*time.Second)
	}
	b.run(chromedp.Navigate(s.URL + "/#/clusters"))
	b.until("the clusters", `document.querySelectorAll("#clusters tr[data-cluster]").length >= 2`, 10*time.Second)
	var want []string
	clusters := s.Do(t, "GET", "/v1/clusters", st.AdminToken, nil).JSON(t)["clusters"].([]any)
	sort.Slice(clusters, func(i, j int) bool {
		return clusters[i].(map[string]any)["created_at"].(string) > clusters[j].(map[string]any)["created_at"].(string)
	})
	for _, c := range clusters {
		want = append(want, c.(map[string]any)["name"].(string))
	}
	if got := eval[[]string](b, `[...document.querySelectorAll("#clusters tr[data-cluster] b")].map(b => b.innerText)`); !slices.Equal(got, want) || len(got) < 3 {
		t.Errorf("the clusters read %v, want the newest first: %v", got, want)
	}
	// Each choice of the list shows what the API's filter gives.
	choices := eval[[]string](b, `[...document.querySelectorAll("#clusters-shown option")].map((o) => o.value)`)
	if len(choices) != 5 {
		t.Fatalf("the cluster list's choices: %q", choices)
	}
	for _, q := range choices {
		var ids []string
		for _, c := range s.Do(t, "GET", "/v1/clusters?"+q, st.AdminToken, nil).JSON(t)["clusters"].([]any) {
			ids = append(ids, c.(map[string]any)["id"].(string))
		}
		if q == "status=Locked,Syncing" && len(ids) != 2 {
			t.Errorf("the running migration's clusters: %v, want its source and target", ids)
		}
		eval[bool](b, `(() => { const s = document.getElementById("clusters-shown"); s.value = "`+q+`"; return s.dispatchEvent(new Event("change")); })()`)
		b.until("the clusters of "+q, `[...document.querySelectorAll("#clusters tr[data-cluster]")].map((r) => r.dataset.cluster).join() == "`+strings.Join(ids, ",")+`"`, 10*time.Second)
	}
	// Every page fits a phone's screen; its tables scroll in their card.
	b.run(chromedp.EmulateViewport(390, 844))
	for _, hash := range []string{"#/clusters", "#/migrations", "#/migrations/" + id} {
		b.run(chromedp.Navigate(s.URL + "/" + hash))
		b.until("the page "+hash, `document.querySelector("main .card") && !document.querySelector("main").innerText.includes("Loading")`, 10*time.Second)
		if eval[bool](b, `document.documentElement.scrollWidth > window.innerWidth + 1`) {
			t.Errorf("%s is wider than a phone's screen", hash)
		}
	}
	b.screenshot("8-phone-cancelled")
}

// The console's assets come from the binary, and API paths never fall
// through to the page.
func TestConsoleServesOnlyItsAssets(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	for path, want := range map[string]int{"/": 200, "/app.js": 200, "/clusters.js": 200, "/words.js": 200, "/style.css": 200, "/nope.js": 404, "/v1/nope": 404} {
		r := s.Do(t, "GET", path, "", nil)
		if r.Status != want && !(path == "/v1/nope" && r.Status == 401) {
			t.Errorf("GET %s: %d, want %d", path, r.Status, want)
		}
		if path == "/v1/nope" && strings.Contains(string(r.Body), "<html") {
			t.Errorf("GET /v1/nope answered with the console page")
		}
	}
	for _, path := range []string{"/", "/app.js"} {
		if r := s.Do(t, "HEAD", path, "", nil); r.Status != 200 || len(r.Body) != 0 {
			t.Errorf("HEAD %s: %d with %d bytes, want 200 and none", path, r.Status, len(r.Body))
		}
	}
	r := s.Do(t, "GET", "/", "", nil)
	if !strings.Contains(string(r.Body), `<script src="app.js">`) {
		t.Fatalf("index page: %s", r.Body)
	}
}
