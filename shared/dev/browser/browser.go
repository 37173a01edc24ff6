// Package browser drives a real headless Chromium (Debian's chromium package, installed by
// `make browser`) from Go tests with chromedp, the way a person uses a page: clicking,
// typing, pressing Tab and Enter, and reading what is shown. It records every uncaught
// JavaScript exception (a test fails if its page threw one) and console message
// (Content-Security-Policy violations included), and writes screenshots under
// build/screenshots.
//
// Without a browser, tests that ask for one are skipped, or fail when
// WEBHOOKS_REQUIRE_BROWSER=1 (make test sets it).
package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/datajetty/webhooks/shared/dev/devstack"
)

// Timeout bounds each step (a click, a wait for text). Generous: a step that waits on the
// background consumers (a replay completing) can take long on a busy 2-core machine running
// other test binaries beside the emulator; a passing step never waits for it.
const Timeout = 45 * time.Second

// Find returns the Chromium executable: WEBHOOKS_CHROMIUM, else chromium, chromium-browser
// or google-chrome on PATH.
func Find() (string, error) {
	if p := os.Getenv("WEBHOOKS_CHROMIUM"); p != "" {
		return exec.LookPath(p)
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium on PATH (run `make browser`, or set WEBHOOKS_CHROMIUM)")
}

// Page is one browser (its own process and profile) with one tab.
type Page struct {
	t   testing.TB
	ctx context.Context

	mu         sync.Mutex
	exceptions []string
	console    []string
}

// Open starts a fresh headless Chromium with a viewport of width × height CSS pixels; it
// is stopped when the test ends.
func Open(t testing.TB, width, height int) *Page {
	t.Helper()
	exe, err := Find()
	if err != nil {
		if os.Getenv("WEBHOOKS_REQUIRE_BROWSER") == "1" {
			t.Fatal(err.Error() + "; WEBHOOKS_REQUIRE_BROWSER=1")
		}
		t.Skip(err.Error())
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // tests run as root in containers
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	p := &Page{t: t}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(p.record))
	p.ctx = ctx
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		// Whatever else a test checks, the page must not have thrown.
		if ex := p.Exceptions(); len(ex) > 0 {
			t.Errorf("uncaught JavaScript exceptions in the page:\n%s", strings.Join(ex, "\n"))
		}
	})
	// The first call starts the browser; it must not carry a timeout (that would stop it).
	if _, err := chromedp.Call(ctx, log.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("start chromium (%s): %v", exe, err)
	}
	if _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return p
}

// record keeps the events tests assert on (it runs on chromedp's reading goroutine).
func (p *Page) record(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			msg += " " + d.Exception.Description
		}
		p.exceptions = append(p.exceptions, msg)
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			if a.Value != nil {
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		p.console = append(p.console, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " ")))
	case *log.EventEntryAdded:
		p.console = append(p.console, fmt.Sprintf("%s %s: %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text))
	}
}

// Exceptions are the uncaught JavaScript exceptions so far.
func (p *Page) Exceptions() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.exceptions...)
}

// Console is every console and browser log message so far (CSP violations among them).
func (p *Page) Console() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.console...)
}

// Do runs steps, failing the test (with a screenshot) if one fails or takes longer than
// Timeout.
func (p *Page) Do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.fail("%v", err)
	}
}

// Eval evaluates a JavaScript expression in the page and returns its value.
func Eval[T any](p *Page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.fail("evaluate %s: %v", expr, err)
	}
	return v
}

// Navigate loads url.
func (p *Page) Navigate(url string) {
	p.t.Helper()
	p.Do(chromedp.Navigate(url))
}

// Text is the visible text (innerText) of the first element matching the CSS selector.
func (p *Page) Text(sel string) string {
	p.t.Helper()
	return Eval[string](p, fmt.Sprintf(`(() => { const n = document.querySelector(%q); return n ? n.innerText : ""; })()`, sel))
}

// WaitText waits until the visible text of the element matching sel contains want.
func (p *Page) WaitText(sel, want string) {
	p.t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		got := p.Text(sel)
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			p.fail("%s never showed %q; it shows:\n%s", sel, want, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitGone waits until no element matches sel.
func (p *Page) WaitGone(sel string) {
	p.t.Helper()
	p.Do(chromedp.WaitNotPresent(chromedp.CSS(sel)))
}

// buttonXPath finds a visible button by its exact label.
func buttonXPath(label string) string {
	return fmt.Sprintf(`//button[normalize-space(.)=%s and not(@hidden) and not(ancestor::*[@hidden])]`, xpathString(label))
}

func xpathString(s string) string {
	if !strings.Contains(s, "'") {
		return "'" + s + "'"
	}
	return `concat('` + strings.ReplaceAll(s, "'", `', "'", '`) + `')`
}

// Click clicks the first element matching the CSS selector, as a mouse does.
func (p *Page) Click(sel string) {
	p.t.Helper()
	p.Do(chromedp.Click(chromedp.CSS(sel)))
}

// ClickButton clicks the visible button labelled label (inside scope, a CSS selector, or
// anywhere when scope is "").
func (p *Page) ClickButton(scope, label string) {
	p.t.Helper()
	x := buttonXPath(label)
	if scope != "" {
		p.Do(chromedp.WaitVisible(chromedp.CSS(scope)))
		// Limit to the scope: an XPath under the element the selector names.
		id := Eval[string](p, fmt.Sprintf(`(() => { const n = document.querySelector(%q); if (!n.id) n.id = "scope-" + Math.random().toString(36).slice(2); return n.id; })()`, scope))
		x = fmt.Sprintf(`//*[@id=%s]%s`, xpathString(id), buttonXPath(label))
	}
	p.Do(chromedp.Click(chromedp.Search(x)))
}

// Type clicks into the field matching sel, clears it, and types text key by key. After the
// click it lets the page run the timers it had scheduled (a form focuses its first field in a
// setTimeout) and clicks again if they moved the focus, so on a busy machine the keys cannot
// land in another field.
func (p *Page) Type(sel, text string) {
	p.t.Helper()
	p.Do(chromedp.Click(chromedp.CSS(sel)))
	p.settle()
	if !Eval[bool](p, fmt.Sprintf(`document.activeElement === document.querySelector(%q)`, sel)) {
		p.Do(chromedp.Click(chromedp.CSS(sel)))
	}
	Eval[bool](p, fmt.Sprintf(`(document.querySelector(%q).select(), true)`, sel))
	p.Do(chromedp.KeyEvent("\b"))
	p.Do(chromedp.KeyEvent(text))
}

// settle waits until the timers the page scheduled so far have run and a frame was drawn.
func (p *Page) settle() {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`new Promise(r => setTimeout(() => requestAnimationFrame(() => r(true)), 0))`, chromedp.EvalAwaitPromise)); err != nil {
		p.fail("wait for the page to settle: %v", err)
	}
}

// Keys sends keys to the focused element ("\t" Tab, "\r" Enter, kb constants of chromedp).
func (p *Page) Keys(keys string, opts ...chromedp.KeyOption) {
	p.t.Helper()
	p.Do(chromedp.KeyEvent(keys, opts...))
}

// TabTo presses Tab until the focused element matches the CSS selector (at most 60 times),
// the way a keyboard user reaches a control.
func (p *Page) TabTo(sel string) {
	p.t.Helper()
	for i := 0; i < 60; i++ {
		if Eval[bool](p, fmt.Sprintf(`!!document.activeElement && document.activeElement.matches(%q)`, sel)) {
			return
		}
		p.Keys("\t")
	}
	p.fail("Tab never reached %s (focus is on %s)", sel, Eval[string](p, `document.activeElement ? document.activeElement.outerHTML.slice(0, 200) : "nothing"`))
}

// TabToButton presses Tab until the focused element is the button labelled label.
func (p *Page) TabToButton(label string) {
	p.t.Helper()
	for i := 0; i < 60; i++ {
		if Eval[bool](p, fmt.Sprintf(`!!document.activeElement && document.activeElement.tagName === "BUTTON" && document.activeElement.innerText.trim() === %q`, label)) {
			return
		}
		p.Keys("\t")
	}
	p.fail("Tab never reached the button %q (focus is on %s)", label, Eval[string](p, `document.activeElement ? document.activeElement.outerHTML.slice(0, 200) : "nothing"`))
}

// Viewport resizes the page's viewport (CSS pixels).
func (p *Page) Viewport(width, height int64) {
	p.t.Helper()
	p.Do(chromedp.EmulateViewport(width, height))
}

// Screenshot writes the full page as build/screenshots/<name>.png and returns the path.
func (p *Page) Screenshot(name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, Timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	path, err := writeArtefact(name+".png", png)
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	return path
}

// ScreenshotDir is where screenshots go (git-ignored build output).
func ScreenshotDir() (string, error) {
	root, err := devstack.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "build", "screenshots"), nil
}

func writeArtefact(name string, data []byte) (string, error) {
	dir, err := ScreenshotDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, data, 0o644)
}

// fail stops the test, keeping a screenshot of what the page showed.
func (p *Page) fail(format string, args ...any) {
	p.t.Helper()
	msg := fmt.Sprintf(format, args...)
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	name := "failure-" + strings.NewReplacer("/", "_", " ", "_").Replace(p.t.Name()) + ".png"
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		if path, err := writeArtefact(name, png); err == nil {
			msg += "\n(screenshot: " + path + ")"
		}
	}
	if ex := p.Exceptions(); len(ex) > 0 {
		msg += "\nJavaScript exceptions: " + strings.Join(ex, "\n")
	}
	p.t.Fatal(msg)
}
