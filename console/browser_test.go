package console_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zdm-io/zdm/dataplane/milvus/milvustest"
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
	milvustest.Missing(t, "no chromium found: the browser tests need it (make test installs Debian's chromium; or set ZDM_CHROMIUM)")
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

// click clicks what the selector sel names once the page has it, found
// and clicked in one step: a list that each refresh redraws replaces its
// nodes between the browser protocol's lookup and its click.
func (b *browser) click(what, sel string) {
	b.t.Helper()
	b.until(what, `(() => { const e = document.querySelector(`+strconv.Quote(sel)+`); if (e) e.click(); return !!e })()`, 10*time.Second)
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
const enabledButtons = `Array.from(document.querySelectorAll("button")).filter(b => !b.disabled && !b.closest("[hidden]")).map(b => b.id || b.textContent)`
