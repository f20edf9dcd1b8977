package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zdm-io/zdm/service"
	st "github.com/zdm-io/zdm/service/servicetest"
)

// chromium finds the browser; make test installs Debian's chromium.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ZDM_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("ZDM_REQUIRE_INTEGRATION") != "" {
		t.Fatal("no chromium found: the browser tests need it (make test installs Debian's chromium; or set ZDM_CHROMIUM)")
	}
	t.Skip("no chromium found; run make test, which installs it, or set ZDM_CHROMIUM")
	return ""
}

// outDir is where screenshots go: $ZDM_TEST_OUTPUT/console or
// testout/console at the repository's root.
func outDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ZDM_TEST_OUTPUT")
	if dir == "" {
		dir = filepath.Join("..", "testout")
	}
	dir, err := filepath.Abs(filepath.Join(dir, "console"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

type browser struct {
	t    *testing.T
	ctx  context.Context
	out  string
	base string
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first action on a context starts the browser and lives as long
	// as that call's context: no timeout on it.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx, out: outDir(t), base: base}
}

// tab opens a second tab of the same browser: its own session storage, so
// it starts signed out.
func (b *browser) tab() *browser {
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate(b.base+"/")); err != nil {
		b.t.Fatalf("open a tab: %v", err)
	}
	return &browser{t: b.t, ctx: ctx, out: b.out, base: b.base}
}

func (b *browser) run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v\npage text:\n%s", err, b.text())
	}
}

func (b *browser) text() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	return s
}

// eval evaluates a JavaScript expression in the page into out.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v\npage text:\n%s", js, err, b.text())
	}
	return v
}

// until polls a JavaScript condition; the page refreshes every second.
func (b *browser) until(what, js string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if eval[bool](b, "!!("+js+")") {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("page never showed %s within %s (%s)\npage text:\n%s", what, timeout, js, b.text())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(b.out, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
}

func (b *browser) signIn(token string) {
	b.t.Helper()
	b.run(chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SetValue(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("signin-button")))
	b.until("the signed-in user", `document.getElementById("who").textContent.length > 0`, 10*time.Second)
}

// enabledButtons lists the visible buttons one can press.
const enabledButtons = `Array.from(document.querySelectorAll("button")).filter(b => !b.disabled && !b.hidden).map(b => b.id || b.textContent)`

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
	b.run(chromedp.SetValue(chromedp.ID("f-target-project"), "search"), chromedp.Click(chromedp.ID("start-button")))
	b.until("the migration page", `location.hash.startsWith("#/migrations/m")`, 10*time.Second)
	hash := eval[string](b, `location.hash`)
	id := strings.TrimPrefix(hash, "#/migrations/")

	// Copying: progress per collection and in total.
	b.until("copy progress", `document.querySelector("#state .copying") && document.querySelectorAll("#progress tr[data-collection]").length == 2 && /^Total\s+[1-9]/.test(document.querySelector("#progress-total").innerText)`, 20*time.Second)
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
	b.until("the history", `document.getElementById("events").innerText.includes("zdm.migration.switched_over.v1")`, 10*time.Second)
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
	b.screenshot("7-cancelled")
}

// The console's assets come from the binary, and API paths never fall
// through to the page.
func TestConsoleServesOnlyItsAssets(t *testing.T) {
	s := st.Start(t, st.Config(t.TempDir()))
	for path, want := range map[string]int{"/": 200, "/app.js": 200, "/style.css": 200, "/nope.js": 404, "/v1/nope": 404} {
		r := s.Do(t, "GET", path, "", nil)
		if r.Status != want && !(path == "/v1/nope" && r.Status == 401) {
			t.Errorf("GET %s: %d, want %d", path, r.Status, want)
		}
		if path == "/v1/nope" && strings.Contains(string(r.Body), "<html") {
			t.Errorf("GET /v1/nope answered with the console page")
		}
	}
	r := s.Do(t, "GET", "/", "", nil)
	if !strings.Contains(string(r.Body), `<script src="app.js">`) {
		t.Fatalf("index page: %s", r.Body)
	}
}
