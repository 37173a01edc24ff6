package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/datajetty/webhooks/shared/api"
	deliverypkg "github.com/datajetty/webhooks/shared/delivery"
	"github.com/datajetty/webhooks/shared/dev/browser"
	"github.com/datajetty/webhooks/shared/dev/devissuer"
)

// The tenant portal in a real headless Chromium, against the whole local stack: the API
// and the portal on one origin, the three queue consumers polling in the background, and
// real receivers on loopback. Every step clicks, types and reads what a person would.

// hookReceiver answers the challenge handshake and records every delivery; answer decides
// what a delivery gets back.
type hookReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   [][]byte
	heads    []http.Header
	chHeads  []http.Header // challenge handshakes received
	chBodies [][]byte
	answer   func(w http.ResponseWriter)
}

func newHookReceiver(t *testing.T, answer func(w http.ResponseWriter)) *hookReceiver {
	rc := &hookReceiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var msg struct{ Type, Challenge string }
		_ = json.Unmarshal(body, &msg)
		if msg.Type == "webhook.challenge" {
			rc.mu.Lock()
			rc.chHeads = append(rc.chHeads, r.Header.Clone())
			rc.chBodies = append(rc.chBodies, body)
			rc.mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]string{"challenge": msg.Challenge})
			return
		}
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, body)
		rc.heads = append(rc.heads, r.Header.Clone())
		rc.mu.Unlock()
		if rc.answer != nil {
			rc.answer(w)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

// verified counts the deliveries whose signature the official library accepts with secret.
func (rc *hookReceiver) verified(t *testing.T, secret string) (ok, total int) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("the secret the portal showed is not a Standard Webhooks secret: %v", err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i, b := range rc.bodies {
		if wh.Verify(b, rc.heads[i]) == nil {
			ok++
		}
	}
	return ok, len(rc.bodies)
}

// lastChallengeVerifies says whether the latest challenge handshake was signed with secret.
func (rc *hookReceiver) lastChallengeVerifies(t *testing.T, secret string) bool {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := len(rc.chHeads)
	return n > 0 && wh.Verify(rc.chBodies[n-1], rc.chHeads[n-1]) == nil
}

func (rc *hookReceiver) challengeCount() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.chHeads)
}

// webhookIDs are the webhook-id headers of the deliveries, in arrival order.
func (rc *hookReceiver) webhookIDs() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	ids := make([]string, len(rc.heads))
	for i, h := range rc.heads {
		ids[i] = h.Get("webhook-id")
	}
	return ids
}

// newStatusReceiver is a hookReceiver whose deliveries are answered with code, until the
// test sets another with the function it returns.
func newStatusReceiver(t *testing.T, code int) (*hookReceiver, func(int)) {
	var mu sync.Mutex
	rc := newHookReceiver(t, func(w http.ResponseWriter) {
		mu.Lock()
		c := code
		mu.Unlock()
		w.WriteHeader(c)
	})
	return rc, func(c int) {
		mu.Lock()
		code = c
		mu.Unlock()
	}
}

// register registers url for the event patterns through the API and returns the
// endpoint's id.
func (s *system) register(tenant, url string, events ...string) string {
	s.t.Helper()
	status, body := s.call("POST", "/endpoints", tenant, map[string]any{"url": url, "events": events})
	if status != http.StatusCreated {
		s.t.Fatalf("register %s: %d %v", url, status, body)
	}
	return body["endpoint_id"].(string)
}

// endpoint is one endpoint as the API holds it.
func (s *system) endpoint(tenant, id string) map[string]any {
	s.t.Helper()
	_, ep := s.call("GET", "/endpoints/"+id, tenant, nil)
	return ep
}

func (rc *hookReceiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.bodies)
}

func (s *system) token(tenant string, scopes []string, ttl time.Duration) string {
	s.t.Helper()
	tok, err := s.issuer.Mint(tenant, scopes, ttl)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

var allScopes = []string{api.ScopeRead, api.ScopeWrite, api.ScopeReplay}

// openPortal opens the portal the way a platform links to it: the token in the fragment.
func (s *system) openPortal(t *testing.T, token string, width, height int) *browser.Page {
	p := browser.Open(t, width, height)
	p.Navigate(s.api + "/portal/#token=" + token)
	p.Do() // nothing: Navigate waited for the load
	p.WaitText("main h2", "")
	return p
}

// waitFor polls cond until it holds (the background consumers work asynchronously).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(browser.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *system) publishN(tenant, typ string, n int, at time.Time) {
	for i := 0; i < n; i++ {
		s.publish(map[string]any{
			"id": fmt.Sprintf("evt_%s_%d_%d", strings.ReplaceAll(typ, ".", "_"), at.UnixNano(), i), "tenant_id": tenant, "type": typ,
			"occurred_at": at.Add(time.Duration(i) * time.Millisecond).UTC().Format(time.RFC3339Nano), "data": map[string]any{"n": i},
		})
	}
}

// endpoints is the tenant's endpoint list as the API holds it.
func (s *system) endpoints(tenant string) []map[string]any {
	s.t.Helper()
	var out []map[string]any
	cursor := ""
	for {
		status, page := s.call("GET", "/endpoints?limit=100&cursor="+cursor, tenant, nil)
		if status != 200 {
			s.t.Fatalf("list: %d %v", status, page)
		}
		for _, it := range page["items"].([]any) {
			out = append(out, it.(map[string]any))
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			return out
		}
		cursor = next
	}
}

func TestPortalJourney(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.run()
	rc := newHookReceiver(t, nil)
	const tenant = "portal-acme"
	p := s.openPortal(t, s.token(tenant, allScopes, time.Hour), 1280, 900)

	// The token left the address bar at once, and stays only in this tab's storage.
	if loc := browser.Eval[string](p, "location.href"); strings.Contains(loc, "token") {
		t.Fatalf("the token is still in the address bar: %s", loc)
	}
	if browser.Eval[string](p, "document.cookie") != "" {
		t.Fatal("the portal set a cookie")
	}
	p.WaitText("main", "No endpoints yet.")
	p.Screenshot("portal-empty")

	// Add an endpoint: URL, an event type picked from the catalog, submit.
	p.ClickButton("", "Add endpoint")
	p.WaitText("main h2", "Add an endpoint")
	p.Type("input[type=url]", rc.URL+"/hooks")
	p.WaitText("fieldset.events .catalog", "An export of a dataset finished")
	p.Click(`fieldset.events input[type=checkbox][value="export.done"]`)
	p.ClickButton("form", "Add endpoint")
	p.WaitText("main", "Handshake succeeded")
	secret := browser.Eval[string](p, `document.querySelector("input.secret").value`)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("the new secret is not shown: %q", secret)
	}
	p.Screenshot("portal-added")
	eps := s.endpoints(tenant)
	if len(eps) != 1 || eps[0]["url"] != rc.URL+"/hooks" || fmt.Sprint(eps[0]["events"]) != "[export.done]" {
		t.Fatalf("the API holds %v", eps)
	}
	epID := eps[0]["endpoint_id"].(string)

	// Events arrive, signed with the secret the page showed once.
	s.publishN(tenant, "export.done", 3, time.Now().Add(-time.Minute))
	waitFor(t, "3 deliveries", func() bool { return rc.count() >= 3 })
	if ok, total := rc.verified(t, secret); ok != 3 || total != 3 {
		t.Fatalf("%d of %d deliveries verify with the secret the portal showed", ok, total)
	}

	// The endpoint's page: settings, then the delivery log.
	p.ClickButton("", "Go to the endpoint")
	p.WaitText("main dl.facts", rc.URL+"/hooks")
	p.WaitText("main dl.facts", "Active")
	p.ClickButton(".log", "Refresh")
	p.WaitText(".log table", "Succeeded")
	if n := browser.Eval[int](p, `document.querySelectorAll(".log tbody tr").length`); n != 3 {
		t.Fatalf("the log shows %d attempts, want 3", n)
	}
	p.Screenshot("portal-endpoint")

	// One attempt in detail; Escape closes it.
	p.Click(".log tbody tr:first-child button")
	p.WaitText("dialog[open]", "Delivery attempt")
	p.WaitText("dialog[open]", "export.done")
	p.Keys("\x1b") // Escape
	p.WaitGone("dialog")

	// Edit: one more pattern; the API holds it, with the next version.
	p.ClickButton("", "Edit")
	p.Type("form.panel fieldset.events input[type=text]", "import.*")
	p.ClickButton("form.panel", "Add pattern")
	p.ClickButton("form.panel", "Save")
	p.WaitText(".action-status", "Saved.")
	p.WaitText("main dl.facts", "import.*")
	ep := s.endpoints(tenant)[0]
	if fmt.Sprint(ep["events"]) != "[export.done import.*]" || ep["version"] != 2.0 {
		t.Fatalf("after the edit the API holds %v", ep)
	}

	// Rotate the secret: confirm, see the new one once, the grace explained; both sign.
	p.ClickButton(".action-area", "Rotate secret")
	p.WaitText("dialog[open]", "24 hours")
	p.ClickButton("dialog[open]", "Rotate secret")
	p.WaitText(".panel-slot", "New signing secret")
	p.WaitText(".panel-slot", "The old secret keeps signing too until")
	p.WaitText(".panel-slot", "every delivery is signed with the new secret")
	rotated := browser.Eval[string](p, `document.querySelector(".panel-slot input.secret").value`)
	if !strings.HasPrefix(rotated, "whsec_") || rotated == secret {
		t.Fatalf("rotated secret %q", rotated)
	}
	p.WaitText("main dl.facts", "Previous secret")
	ep = s.endpoints(tenant)[0]
	grace, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(ep["previous_secret_expires_at"]))
	if d := time.Until(grace); d < 23*time.Hour || d > 25*time.Hour {
		t.Fatalf("previous secret valid for %s, want the 24 h grace (%v)", d, ep)
	}
	p.Screenshot("portal-rotated")
	// Editing after the rotation sends the rotated version, not the one the buttons saw.
	p.ClickButton(".panel-slot", "Done")
	p.ClickButton(".action-area", "Edit")
	p.Type("form.panel fieldset.events input[type=text]", "export.failed")
	p.ClickButton("form.panel", "Add pattern")
	p.ClickButton("form.panel", "Save")
	p.WaitText(".action-status", "Saved.")
	if ep := s.endpoints(tenant)[0]; fmt.Sprint(ep["events"]) != "[export.done export.failed import.*]" {
		t.Fatalf("after the second edit the API holds %v", ep)
	}

	// The rotation's handshake was signed with the secret the page showed (deliveries pick
	// it up within the deliver function's 30 s cache; during the grace the old one signs too).
	if !rc.lastChallengeVerifies(t, rotated) {
		t.Fatal("the rotation's challenge does not verify with the secret the page showed")
	}
	before := rc.count()
	s.publishN(tenant, "import.done", 1, time.Now().Add(-30*time.Second))
	waitFor(t, "the delivery after the rotation", func() bool { return rc.count() > before })
	if okOld, total := rc.verified(t, secret); okOld != total {
		t.Fatalf("during the grace every delivery must still verify with the old secret: %d of %d", okOld, total)
	}

	// Replay from the watermark, watched until it completes.
	before = rc.count()
	p.ClickButton(".replay", "Start replay")
	p.WaitText(".replay-status", "Completed")
	replayID := browser.Eval[string](p, `document.querySelector(".replay-status [data-replay]").dataset.replay`)
	if status, r := s.call("GET", "/replays/"+replayID, tenant, nil); status != 200 || r["status"] != "completed" || r["endpoint_id"] != epID {
		t.Fatalf("the replay the page watched: %d %v", status, r)
	}

	// Replay since a time: a wrong time is refused next to the field, a right one runs.
	p.Click("input[type=radio][value=time]")
	p.Type(".replay input[type=text]", "yesterday")
	p.ClickButton(".replay", "Start replay")
	p.WaitText(".replay .field-error", "YYYY-MM-DD HH:MM")
	since := time.Now().Add(-10 * time.Minute).Format("2006-01-02 15:04")
	p.Type(".replay input[type=text]", since)
	p.ClickButton(".replay", "Start replay")
	p.WaitText(".replay-status", "Completed: 4 events queued")
	waitFor(t, "the replayed deliveries", func() bool { return rc.count() >= before+4 })
	p.Screenshot("portal-replay")

	// Pause: what arrives meanwhile is recorded as skipped; resume runs the handshake.
	p.ClickButton(".action-area", "Pause")
	p.WaitText(".action-status", "Paused")
	p.WaitText("main dl.facts", "Paused by you")
	if ep := s.endpoints(tenant)[0]; ep["status"] != "disabled" || ep["disabled_reason"] != "tenant" {
		t.Fatalf("after Pause the API holds %v", ep)
	}
	s.publishN(tenant, "export.done", 1, time.Now().Add(-5*time.Second))
	p.Do(chromedp.SetValue(chromedp.CSS(".log select"), "skipped"))
	browser.Eval[bool](p, `document.querySelector(".log select").dispatchEvent(new Event("change")) || true`)
	deadline := time.Now().Add(browser.Timeout)
	for !strings.Contains(p.Text(".log"), "Skipped") {
		if time.Now().After(deadline) {
			t.Fatalf("the event sent while paused is not in the log as skipped: %s", p.Text(".log"))
		}
		time.Sleep(300 * time.Millisecond)
		p.ClickButton(".log", "Refresh")
	}
	p.Screenshot("portal-paused")
	chBefore := rc.challengeCount()
	p.ClickButton(".action-area", "Resume")
	p.WaitText(".action-status", "Resumed")
	p.WaitText("main dl.facts", "Active")
	if rc.challengeCount() != chBefore+1 {
		t.Fatal("resuming ran no handshake")
	}
	if ep := s.endpoints(tenant)[0]; ep["status"] != "active" {
		t.Fatalf("after Resume the API holds %v", ep)
	}

	// Delete, after a confirmation that can be declined.
	p.ClickButton(".action-area", "Delete")
	p.WaitText("dialog[open]", "Delete this endpoint?")
	p.WaitText("dialog[open]", rc.URL+"/hooks")
	p.ClickButton("dialog[open]", "Cancel")
	p.WaitGone("dialog")
	if n := len(s.endpoints(tenant)); n != 1 {
		t.Fatalf("declining the confirmation deleted the endpoint (%d left)", n)
	}
	p.ClickButton(".action-area", "Delete")
	p.ClickButton("dialog[open]", "Delete endpoint")
	p.WaitText("main h2", "Endpoints")
	p.WaitText("main", "No endpoints yet.")
	if eps := s.endpoints(tenant); len(eps) != 0 {
		t.Fatalf("after the delete the API holds %v", eps)
	}
	if status, _ := s.call("GET", "/endpoints/"+epID, tenant, nil); status != http.StatusNotFound {
		t.Fatalf("the deleted endpoint answers %d", status)
	}
	for _, m := range p.Console() {
		if strings.Contains(m, "Content Security Policy") || strings.Contains(m, "Trusted Type") {
			t.Fatalf("the page broke its own policy: %s", m)
		}
	}
}

// xss is markup that would run script if a page ever parsed it as HTML.
const xss = `<img src=x onerror=window.__pwned=1>`

// TestPortalShowsErrorsAsInertText: every API error appears in plain words next to the
// field that caused it; attacker-controlled text in those errors (here a pattern the API
// quotes back) is shown as text, runs nothing and fetches nothing; and the browser itself
// refuses HTML strings and inline script under the portal's policy.
func TestPortalShowsErrorsAsInertText(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	const tenant = "portal-errors"
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, xss)
	}))
	t.Cleanup(refusing.Close)
	good := newHookReceiver(t, nil)
	p := s.openPortal(t, s.token(tenant, allScopes, time.Hour), 1280, 900)
	p.ClickButton("", "Add endpoint")
	// The catalog arrives after the form and pushes its buttons down: a click aimed before
	// that lands elsewhere (CI, a busy machine).
	p.WaitText("fieldset.events .catalog", "An export of a dataset finished")

	// Nothing typed: said next to each field, before any call.
	p.ClickButton("form", "Add endpoint")
	p.WaitText("input[type=url] ~ .field-error", "Enter the URL")

	// A receiver that fails the handshake: the reason next to the URL field; nothing stored.
	p.Type("input[type=url]", refusing.URL+"/hooks")
	p.Type("fieldset.events input[type=text]", "export.done")
	p.Keys("\r")
	p.ClickButton("form", "Add endpoint")
	p.WaitText("input[type=url] ~ .field-error", "Handshake failed")
	if got := browser.Eval[string](p, `document.querySelector("input[type=url]").getAttribute("aria-invalid")`); got != "true" {
		t.Fatalf("the URL field is not marked invalid: %q", got)
	}
	p.Screenshot("portal-handshake-failed")
	if eps := s.endpoints(tenant); len(eps) != 0 {
		t.Fatalf("a failed handshake stored %v", eps)
	}

	// A pattern that is markup: the API refuses it and quotes it back; the page shows the
	// quote as text next to the events.
	p.Type("input[type=url]", good.URL+"/hooks")
	p.Type("fieldset.events input[type=text]", xss)
	p.Keys("\r")
	p.ClickButton("form", "Add endpoint")
	p.WaitText("fieldset.events .field-error", `is not an event type`)
	p.WaitText("fieldset.events .field-error", xss)
	if n := browser.Eval[int](p, `document.querySelectorAll("main img").length`); n != 0 {
		t.Fatalf("injected markup became %d <img> elements", n)
	}
	if pwned := browser.Eval[bool](p, `window.__pwned === 1`); pwned {
		t.Fatal("injected markup ran script")
	}
	for _, path := range s.requestedPortalPaths() {
		if strings.HasSuffix(path, "/x") {
			t.Fatalf("injected markup made the browser fetch %s", path)
		}
	}
	p.Screenshot("portal-inert-error")
	if eps := s.endpoints(tenant); len(eps) != 0 {
		t.Fatalf("an invalid pattern stored %v", eps)
	}

	// The policy in the browser: HTML strings are refused by DOM sinks (Trusted Types), and
	// inline script does not run.
	if got := browser.Eval[string](p, `(() => { try { document.querySelector("main").innerHTML = '<b>x</b>'; return "assigned"; } catch (e) { return e.name; } })()`); got != "TypeError" {
		t.Fatalf("innerHTML with a string: %s, want a TypeError from Trusted Types", got)
	}
	browser.Eval[bool](p, `(() => { const sc = document.createElement("script"); try { sc.text = "window.__inline = 1"; } catch (e) {} document.body.append(sc); return true; })()`)
	if ran := browser.Eval[bool](p, `window.__inline === 1`); ran {
		t.Fatal("inline script ran")
	}
}

func (s *system) requestedPortalPaths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.portalPaths...)
}

// TestPortalPaginationAndLogFilter: the endpoint list and the delivery log page through
// what the API holds; the log's status filter shows only what it names.
func TestPortalPaginationAndLogFilter(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.run()
	const tenant = "portal-pages"
	rc := newHookReceiver(t, nil)
	flaky := newHookReceiver(t, func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) })
	for i := 0; i < 11; i++ {
		// Twelve registrations in a row meet the tenant's rate limit (10/s); s.call waits it out.
		status, body := s.call("POST", "/endpoints", tenant, map[string]any{"url": fmt.Sprintf("%s/e%02d", rc.URL, i), "events": []string{"import.*"}})
		if status != 201 {
			t.Fatalf("register: %d %v", status, body)
		}
	}
	flakyID := s.register(tenant, flaky.URL+"/flaky", "export.*")

	p := s.openPortal(t, s.token(tenant, allScopes, time.Hour), 1280, 900)
	p.WaitText("main table", "/e0")
	first := browser.Eval[int](p, `document.querySelectorAll("main tbody tr").length`)
	p.ClickButton("", "Next page")
	p.WaitText("main h2", "Endpoints")
	p.WaitText("main", "First page")
	second := browser.Eval[int](p, `document.querySelectorAll("main tbody tr").length`)
	if first != 10 || second != 2 {
		t.Fatalf("pages of %d and %d endpoints, want 10 and 2", first, second)
	}
	// Back and forward through the browser history.
	p.Do(chromedp.NavigateBack())
	p.WaitText("main", "Next page")

	// The failing endpoint: every attempt fails and is retried; the list marks nothing
	// else, the log filters.
	s.publishN(tenant, "export.done", 12, time.Now().Add(-time.Minute))
	waitFor(t, "12 failed first attempts", func() bool { return flaky.count() >= 12 })
	p.Navigate(s.api + "/portal/?endpoint=" + flakyID)
	p.WaitText("main dl.facts", "/flaky")
	p.ClickButton(".log", "Refresh")
	p.WaitText(".log table", "Failed, will retry")
	if n := browser.Eval[int](p, `document.querySelectorAll(".log tbody tr").length`); n != 10 {
		t.Fatalf("the first log page shows %d attempts, want 10", n)
	}
	p.ClickButton(".log", "Older")
	p.WaitText(".log", "Newer")
	if n := browser.Eval[int](p, `document.querySelectorAll(".log tbody tr").length`); n < 2 {
		t.Fatalf("the second log page shows %d attempts", n)
	}
	p.Do(chromedp.SetValue(chromedp.CSS(".log select"), "succeeded"))
	browser.Eval[bool](p, `document.querySelector(".log select").dispatchEvent(new Event("change")) || true`)
	p.WaitText(".log", "No attempts with this status.")
	p.Do(chromedp.SetValue(chromedp.CSS(".log select"), "failed"))
	browser.Eval[bool](p, `document.querySelector(".log select").dispatchEvent(new Event("change")) || true`)
	p.WaitText(".log table", "Failed, will retry")
	if odd := browser.Eval[int](p, `[...document.querySelectorAll(".log tbody tr")].filter(r => !["pending", "dead"].includes(r.dataset.status)).length`); odd != 0 {
		t.Fatalf("the failed filter shows %d other attempts", odd)
	}
	p.Screenshot("portal-log-failed")
}

// TestPortalReadOnlyAndExpiry: a webhooks:read token sees everything and can change
// nothing; a token that expires mid-session says so and hands over to a fresh one; a token
// the API refuses says so.
func TestPortalReadOnlyAndExpiry(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	const tenant = "portal-readonly"
	rc := newHookReceiver(t, nil)
	s.register(tenant, rc.URL+"/ro", "*")
	p := s.openPortal(t, s.token(tenant, []string{api.ScopeRead}, time.Hour), 1280, 900)
	p.WaitText("header", "Read-only access")
	p.WaitText("main table", "/ro")
	if n := browser.Eval[int](p, `[...document.querySelectorAll("main button")].filter(b => b.innerText.trim() === "Add endpoint").length`); n != 0 {
		t.Fatal("a read-only session is offered Add endpoint")
	}
	p.ClickButton("main table", "Manage")
	p.WaitText("main dl.facts", "/ro")
	p.WaitText(".log", "No deliveries yet.")
	labels := browser.Eval[[]string](p, `[...document.querySelectorAll("main button")].filter(b => !b.hidden).map(b => b.innerText.trim())`)
	for _, l := range labels {
		switch l {
		case "Edit", "Rotate secret", "Pause", "Resume", "Delete", "Send test event", "Start replay", "Resend this event":
			t.Fatalf("a read-only session is offered %q (buttons: %v)", l, labels)
		}
	}
	p.Screenshot("portal-readonly")

	// A token about to expire: a minute before, the page says when the session ends, and
	// still works.
	browser.Eval[bool](p, fmt.Sprintf(`(location.hash = "token=%s", true)`, s.token(tenant, []string{api.ScopeRead}, 63*time.Second)))
	p.WaitText("main dl.facts", "/ro")
	p.WaitText("#banner", "Your session ends at")
	p.WaitText("#banner", "open the portal again from your platform")
	if browser.Eval[bool](p, `document.getElementById("main").inert`) {
		t.Fatal("a session about to end is already unusable")
	}
	p.ClickButton(".log", "Refresh")
	p.WaitText(".log", "No deliveries yet.")
	p.Screenshot("portal-ending")

	// The platform hands over a token that expires mid-session: the page says so without
	// being asked.
	browser.Eval[bool](p, fmt.Sprintf(`(location.hash = "token=%s", true)`, s.token(tenant, []string{api.ScopeRead}, 2*time.Second)))
	p.WaitText("main dl.facts", "/ro")
	p.WaitText("#banner", "Your session has expired.")
	if !browser.Eval[bool](p, `document.getElementById("main").inert`) {
		t.Fatal("an expired session leaves the page usable")
	}
	p.Screenshot("portal-expired")
	// The platform hands over a fresh token through the fragment: the page carries on.
	fresh := s.token(tenant, allScopes, time.Hour)
	browser.Eval[bool](p, fmt.Sprintf(`(location.hash = "token=%s", true)`, fresh))
	p.WaitText("main dl.facts", "/ro")
	p.WaitText(".action-area", "Edit")
	if !browser.Eval[bool](p, `document.getElementById("banner").hidden`) {
		t.Fatal("the expiry banner stays after a fresh token")
	}
	if loc := browser.Eval[string](p, "location.href"); strings.Contains(loc, "token") {
		t.Fatalf("the fresh token stayed in the address bar: %s", loc)
	}

	// A token the API does not accept (another issuer's key).
	other, err := devissuer.New("https://issuer.test/", "webhooks-e2e")
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := other.Mint(tenant, allScopes, time.Hour)
	q := s.openPortal(t, forged, 800, 600)
	q.WaitText("#banner", "Your access token was not accepted.")
}

// TestPortalKeyboardOnlyAtPhoneWidth adds an endpoint and opens it with the keyboard
// alone, on a 390 px wide screen; every field has a label and nothing scrolls sideways.
func TestPortalKeyboardOnlyAtPhoneWidth(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	const tenant = "portal-keys"
	rc := newHookReceiver(t, nil)
	p := s.openPortal(t, s.token(tenant, allScopes, time.Hour), 390, 844)
	p.Viewport(390, 844)
	p.WaitText("main", "No endpoints yet.")
	p.TabToButton("Add endpoint")
	p.Keys("\r")
	p.WaitText("main h2", "Add an endpoint")
	p.TabTo("input[type=url]")
	p.Keys(rc.URL + "/keys")
	p.TabTo("fieldset.events input[type=text]")
	p.Keys("export.*\r")
	p.WaitText("fieldset.events .patterns", "export.*")
	p.TabToButton("Add endpoint")
	p.Keys("\r")
	p.WaitText("main", "Handshake succeeded")
	p.TabToButton("Go to the endpoint")
	p.Keys("\r")
	p.WaitText("main dl.facts", "/keys")
	unlabelled := browser.Eval[int](p, `[...document.querySelectorAll("main input, main select")].filter(i => i.labels.length === 0 && !i.getAttribute("aria-label")).length`)
	if unlabelled != 0 {
		t.Fatalf("%d form fields have no label", unlabelled)
	}
	if w := browser.Eval[int](p, `document.documentElement.scrollWidth - document.documentElement.clientWidth`); w > 0 {
		t.Fatalf("the page scrolls %d px sideways at 390 px", w)
	}
	p.Screenshot("portal-phone-endpoint")

	// The endpoint's actions with the keyboard: a test event, then pause and resume, the
	// focus staying on the button that replaced the one pressed.
	p.TabToButton("Send test event")
	p.Keys("\r")
	p.WaitText("[data-field=test-status]", "Succeeded")
	p.TabToButton("Pause")
	p.Keys("\r")
	p.WaitText(".action-status", "Paused")
	if got := browser.Eval[string](p, `document.activeElement.innerText.trim()`); got != "Resume" {
		t.Fatalf("after Pause the focus is on %q, want Resume", got)
	}
	p.Keys("\r")
	p.WaitText(".action-status", "Resumed")
	if got := browser.Eval[string](p, `document.activeElement.innerText.trim()`); got != "Pause" {
		t.Fatalf("after Resume the focus is on %q, want Pause", got)
	}
	if w := browser.Eval[int](p, `document.documentElement.scrollWidth - document.documentElement.clientWidth`); w > 0 {
		t.Fatalf("the page with the test result scrolls %d px sideways at 390 px", w)
	}
	p.Navigate(s.api + "/portal/")
	p.WaitText("main table", "/keys")
	if w := browser.Eval[int](p, `document.documentElement.scrollWidth - document.documentElement.clientWidth`); w > 0 {
		t.Fatalf("the list scrolls %d px sideways at 390 px", w)
	}
	p.Screenshot("portal-phone-list")
	if eps := s.endpoints(tenant); len(eps) != 1 || eps[0]["url"] != rc.URL+"/keys" {
		t.Fatalf("the API holds %v", eps)
	}
}

// TestPortalWithoutSelfServiceRoutes: on a service that offers only the contract's routes
// and the delivery log and replay status, the portal still works: the event picker takes
// typed patterns, the endpoint is found through the list, and no control is drawn for an
// action whose route the service lacks (the page reads the service's routes first).
func TestPortalWithoutSelfServiceRoutes(t *testing.T) {
	t.Parallel()
	s := newSystemServing(t, api.RouteRegisterEndpoint, api.RouteListEndpoints, api.RouteStartReplay, api.RouteGetReplay, api.RouteListDeliveries)
	s.run()
	const tenant = "portal-basic"
	rc := newHookReceiver(t, nil)
	p := s.openPortal(t, s.token(tenant, allScopes, time.Hour), 1280, 900)
	p.ClickButton("", "Add endpoint")
	p.WaitText("fieldset.events", "The event catalog is not available on this service")
	p.Type("input[type=url]", rc.URL+"/basic")
	p.Type("fieldset.events input[type=text]", "export.*")
	p.Keys("\r")
	p.ClickButton("form", "Add endpoint")
	p.WaitText("main", "Handshake succeeded")
	p.ClickButton("", "Go to the endpoint")
	p.WaitText("main dl.facts", "/basic")
	p.WaitText(".action-area", "Rotate secret")
	p.WaitText(".replay", "Start replay")
	labels := browser.Eval[[]string](p, `[...document.querySelectorAll("main button")].filter(b => !b.hidden).map(b => b.innerText.trim())`)
	for _, l := range labels {
		switch l {
		case "Pause", "Resume", "Delete", "Send test event":
			t.Fatalf("the page offers %q on a service without its route (buttons: %v)", l, labels)
		}
	}
	s.publishN(tenant, "export.done", 1, time.Now().Add(-time.Minute))
	waitFor(t, "the delivery", func() bool { return rc.count() >= 1 })
	p.ClickButton(".log", "Refresh")
	p.WaitText(".log table", "Succeeded")
	p.Click(".log tbody tr:first-child button")
	p.WaitText("dialog[open]", "Delivery attempt")
	if n := browser.Eval[int](p, `[...document.querySelectorAll("dialog[open] button")].filter(b => b.innerText.trim() === "Resend this event").length`); n != 0 {
		t.Fatal("the page offers Resend on a service without the resend route")
	}
	if eps := s.endpoints(tenant); len(eps) != 1 || eps[0]["status"] != "active" {
		t.Fatalf("the API holds %v", eps)
	}
}

// TestPortalTestEventShowsTheReceiverAsText: "Send test event" shows the attempt (result,
// HTTP status, latency) and the receiver's answer, which is attacker-controlled markup,
// as inert text; the attempt appears in the log marked as a test, and its details offer no
// resend (a test event is not stored).
func TestPortalTestEventShowsTheReceiverAsText(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.run()
	const tenant = "portal-test-event"
	rc := newHookReceiver(t, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, xss)
	})
	s.register(tenant, rc.URL+"/evil", "*")
	p := s.openPortal(t, s.token(tenant, allScopes, time.Hour), 1280, 900)
	p.ClickButton("main table", "Manage")
	p.ClickButton(".action-area", "Send test event")
	p.WaitText(".panel-slot", "Succeeded")
	p.WaitText("[data-field=test-http]", "200")
	p.WaitText("[data-field=test-excerpt]", xss)
	if n := browser.Eval[int](p, `document.querySelectorAll("main img").length`); n != 0 {
		t.Fatalf("the receiver's answer became %d <img> elements", n)
	}
	if browser.Eval[bool](p, `window.__pwned === 1`) {
		t.Fatal("the receiver's answer ran script")
	}
	for _, path := range s.requestedPortalPaths() {
		if strings.HasSuffix(path, "/x") {
			t.Fatalf("the receiver's answer made the browser fetch %s", path)
		}
	}
	p.Screenshot("portal-test-event")
	p.WaitText(".log table", "test")

	// A test event is not stored: its details offer no resend.
	p.Click(`.log tbody tr[data-event^="test_"] button`)
	p.WaitText("dialog[open]", "cannot be resent")
	if n := browser.Eval[int](p, `[...document.querySelectorAll("dialog[open] button")].filter(b => b.innerText.trim() === "Resend this event").length`); n != 0 {
		t.Fatal("a test attempt is offered Resend")
	}
	p.Keys("\x1b")
	p.WaitGone("dialog")
}

// TestPortalShowsWhyAnEndpointStopped: a receiver answers 410 Gone, the service disables
// its endpoint; the list and the endpoint's page say so in plain words with the service's
// own detail and what to do, offer Resume instead of Pause, and resuming (after the
// receiver is fixed) runs the handshake and makes it active again.
func TestPortalShowsWhyAnEndpointStopped(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.run()
	const tenant = "portal-gone"
	rc, answer := newStatusReceiver(t, http.StatusGone)
	epID := s.register(tenant, rc.URL+"/gone", "export.*")
	s.publishN(tenant, "export.done", 1, time.Now().Add(-time.Minute))
	waitFor(t, "the endpoint disabled by the 410", func() bool {
		ep := s.endpoint(tenant, epID)
		return ep["status"] == "disabled"
	})
	if ep := s.endpoint(tenant, epID); ep["disabled_reason"] != "gone" || ep["disabled_detail"] != "410 Gone" {
		t.Fatalf("the API holds %v", ep)
	}

	p := s.openPortal(t, s.token(tenant, allScopes, time.Hour), 1280, 900)
	p.WaitText("main table", "Disabled")
	p.WaitText("main table", "The receiver answered 410 Gone, so deliveries stopped. 410 Gone")
	p.ClickButton("main table", "Manage")
	p.WaitText("[data-field=disabled-reason]", "The receiver answered 410 Gone, so deliveries stopped.")
	p.WaitText("[data-field=disabled-detail]", "410 Gone")
	p.WaitText("main dl.facts", "Fix your receiver, then Resume")
	p.WaitText(".action-area", "Resume")
	labels := browser.Eval[[]string](p, `[...document.querySelectorAll(".action-area button")].filter(b => !b.hidden).map(b => b.innerText.trim())`)
	for _, l := range labels {
		if l == "Pause" {
			t.Fatalf("a disabled endpoint is offered Pause (buttons: %v)", labels)
		}
	}
	p.Screenshot("portal-gone")

	answer(http.StatusOK)
	chBefore := rc.challengeCount()
	p.ClickButton(".action-area", "Resume")
	p.WaitText(".action-status", "Resumed")
	p.WaitText("main dl.facts", "Active")
	if rc.challengeCount() != chBefore+1 {
		t.Fatal("resuming ran no handshake")
	}
	if ep := s.endpoint(tenant, epID); ep["status"] != "active" || ep["disabled_reason"] != nil {
		t.Fatalf("after Resume the API holds %v", ep)
	}
	if n := browser.Eval[int](p, `document.querySelectorAll("[data-field=disabled-reason], [data-field=disabled-detail]").length`); n != 0 {
		t.Fatal("an active endpoint still shows why it was disabled")
	}
}

// waitEither waits until the element matching sel shows one of the texts and says which.
func waitEither(t *testing.T, p *browser.Page, sel string, texts ...string) string {
	t.Helper()
	deadline := time.Now().Add(browser.Timeout)
	for {
		got := p.Text(sel)
		for _, want := range texts {
			if strings.Contains(got, want) {
				return want
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never showed any of %q; it shows:\n%s", sel, texts, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPortalSaysEachErrorNextToItsCause: the API's refusals on the endpoint's page, each in
// plain words where the tenant acted: an edit that lost a race with another change (409),
// replays from a time the API refuses (400, next to the time field), too many replays (429,
// next to the replay form, with how long to wait), and an action on an endpoint deleted
// meanwhile (404, next to the actions). Nothing changes in the API that should not.
func TestPortalSaysEachErrorNextToItsCause(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.run()
	const tenant = "portal-refusals"
	rc := newHookReceiver(t, nil)
	epID := s.register(tenant, rc.URL+"/r", "export.*")
	s.publishN(tenant, "export.done", 1, time.Now().Add(-time.Minute))
	waitFor(t, "the first delivery", func() bool { return rc.count() >= 1 })
	p := s.openPortal(t, s.token(tenant, allScopes, time.Hour), 1280, 900)
	p.Navigate(s.api + "/portal/?endpoint=" + epID)
	p.WaitText("main dl.facts", "/r")

	// 409: the endpoint changed elsewhere while the edit form was open.
	p.ClickButton(".action-area", "Edit")
	if status, body := s.call("POST", "/endpoints", tenant, map[string]any{"endpoint_id": epID, "url": rc.URL + "/r", "events": []string{"export.*", "import.*"}, "version": 1}); status != 200 {
		t.Fatalf("the change elsewhere: %d %v", status, body)
	}
	p.Type("form.panel fieldset.events input[type=text]", "export.failed")
	p.ClickButton("form.panel", "Add pattern")
	p.ClickButton("form.panel", "Save")
	p.WaitText("form.panel", "This endpoint was changed elsewhere since you opened it. Reload it to see the latest version, then try again.")
	p.Screenshot("portal-conflict")
	if ep := s.endpoint(tenant, epID); fmt.Sprint(ep["events"]) != "[export.* import.*]" {
		t.Fatalf("the refused edit changed the endpoint: %v", ep)
	}
	p.ClickButton("form.panel", "Cancel")

	// 400: a time the API refuses, said next to the time field.
	p.Click("input[type=radio][value=time]")
	p.Type(".replay input[type=text]", time.Now().Add(48*time.Hour).Format("2006-01-02 15:04"))
	p.ClickButton(".replay", "Start replay")
	p.WaitText(".replay .field-error", "That was not accepted: from ")
	p.WaitText(".replay .field-error", "is in the future.")
	if got := browser.Eval[string](p, `document.querySelector(".replay input[type=text]").getAttribute("aria-invalid")`); got != "true" {
		t.Fatalf("the time field is not marked invalid: %q", got)
	}
	p.Type(".replay input[type=text]", time.Now().Add(-40*24*time.Hour).Format("2006-01-02 15:04"))
	p.ClickButton(".replay", "Start replay")
	p.WaitText(".replay .field-error", "is older than the event retention of 30 days.")

	// 429: replays are limited per tenant; the page says how long to wait.
	p.Type(".replay input[type=text]", time.Now().Add(-10*time.Minute).Format("2006-01-02 15:04"))
	limited := false
	for i := 0; i < 8 && !limited; i++ {
		p.ClickButton(".replay", "Start replay")
		limited = waitEither(t, p, ".replay-status", "Completed", "Too many requests") == "Too many requests"
	}
	if !limited {
		t.Fatal("eight replays in a row never met the replay rate limit")
	}
	p.WaitText(".replay-status", "seconds and try again.")
	p.Screenshot("portal-rate-limited")

	// 404: the endpoint was deleted elsewhere; the next action says so where it was clicked.
	if status, _ := s.call("DELETE", "/endpoints/"+epID, tenant, nil); status != http.StatusNoContent {
		t.Fatalf("delete elsewhere: %d", status)
	}
	p.ClickButton(".action-area", "Pause")
	p.WaitText(".action-status", "Pause: Not found: it may have been deleted, or it belongs to another account.")
}

// TestPortalResendsADeliveredEvent: "Resend this event" in a delivered event's details
// queues it again; the receiver gets it once more with its original webhook-id, and the
// log shows the new attempt as resent.
func TestPortalResendsADeliveredEvent(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	s.run()
	const tenant = "portal-resend"
	rc := newHookReceiver(t, nil)
	s.register(tenant, rc.URL+"/again", "export.*")
	p := s.openPortal(t, s.token(tenant, allScopes, time.Hour), 1280, 900)
	p.ClickButton("main table", "Manage")
	p.WaitText("main dl.facts", "/again")

	// Resend a delivered event from its attempt's details: the receiver gets it once more,
	// with the same webhook-id, and the log shows the resent attempt.
	s.publishN(tenant, "export.done", 1, time.Now().Add(-time.Minute))
	waitFor(t, "the event's delivery", func() bool { return rc.count() >= 1 })
	p.ClickButton(".log", "Refresh")
	p.WaitText(".log table", "export.done")
	original := rc.webhookIDs()[0]
	p.Click(`.log tbody tr[data-event^="evt_"] button`)
	p.ClickButton("dialog[open]", "Resend this event")
	p.WaitText("dialog[open]", "Queued")
	waitFor(t, "the resent event", func() bool { return rc.count() >= 2 })
	if ids := rc.webhookIDs(); ids[1] != original {
		t.Fatalf("the resend carried webhook-id %q, want the original %q", ids[1], original)
	}
	p.ClickButton("dialog[open]", "Close")
	p.ClickButton(".log", "Refresh")
	p.WaitText(".log table", "resent")
	p.Screenshot("portal-resent")
}

// TestPortalReplaysFromTheWatermarkAndOnlyTheFailed: after a pause, "since the watermark"
// sends exactly the event that was skipped meanwhile; "only those that did not succeed"
// since a time sends exactly the event whose delivery is still failing; the page watches
// each replay until it completes and says how many events it queued.
func TestPortalReplaysFromTheWatermarkAndOnlyTheFailed(t *testing.T) {
	t.Parallel()
	// No retry within the test (the failing event stays failing); the endpoint cache off,
	// so a resume is seen by the next delivery.
	s := newSystem(t, func(o *deliverypkg.Options) {
		o.CacheTTL = 0
		o.Schedule = []time.Duration{time.Hour}
	})
	s.run()
	const tenant = "portal-recover"
	rc, answer := newStatusReceiver(t, http.StatusOK)
	epID := s.register(tenant, rc.URL+"/recover", "export.*")
	t0 := time.Now().Add(-5 * time.Minute).UTC()
	publish := func(id string, at time.Time) {
		s.publish(map[string]any{"id": id, "tenant_id": tenant, "type": "export.done", "occurred_at": at.Format(time.RFC3339Nano), "data": map[string]any{}})
	}
	publish("evt_r1", t0)
	waitFor(t, "evt_r1 delivered", func() bool { return rc.count() >= 1 })
	answer(http.StatusServiceUnavailable)
	publish("evt_r2", t0.Add(time.Minute))
	waitFor(t, "evt_r2 attempted", func() bool { return rc.count() >= 2 })
	answer(http.StatusOK)
	publish("evt_r3", t0.Add(2*time.Minute))
	waitFor(t, "the watermark at evt_r3", func() bool {
		_, ep := s.call("GET", "/endpoints/"+epID, tenant, nil)
		w, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(ep["watermark"]))
		return w.Equal(t0.Add(2 * time.Minute))
	})

	p := s.openPortal(t, s.token(tenant, allScopes, time.Hour), 1280, 900)
	p.Navigate(s.api + "/portal/?endpoint=" + epID)
	p.WaitText("main dl.facts", "/recover")
	// Paused while evt_r4 arrives: it is skipped; resumed, the watermark replay sends it.
	p.ClickButton(".action-area", "Pause")
	p.WaitText(".action-status", "Paused")
	publish("evt_r4", t0.Add(3*time.Minute))
	waitFor(t, "evt_r4 skipped", func() bool {
		_, log := s.call("GET", "/endpoints/"+epID+"/deliveries?status=skipped", tenant, nil)
		items, _ := log["items"].([]any)
		return len(items) == 1
	})
	p.ClickButton(".action-area", "Resume")
	p.WaitText(".action-status", "Resumed")
	before := rc.count()
	p.ClickButton(".replay", "Start replay")
	p.WaitText(".replay-status", "Completed: 1 event queued for delivery.")
	waitFor(t, "the replayed evt_r4", func() bool { return rc.count() > before })
	if ids := rc.webhookIDs(); ids[len(ids)-1] != "evt_r4" {
		t.Fatalf("the watermark replay sent %q, want evt_r4 (all: %v)", ids[len(ids)-1], ids)
	}
	waitFor(t, "evt_r4 recorded as succeeded", func() bool {
		_, log := s.call("GET", "/endpoints/"+epID+"/deliveries?status=succeeded", tenant, nil)
		items, _ := log["items"].([]any)
		for _, it := range items {
			if it.(map[string]any)["event_id"] == "evt_r4" {
				return true
			}
		}
		return false
	})

	// Only what did not succeed, since before evt_r1: evt_r2 alone.
	before = rc.count()
	p.Click("input[type=radio][value=time]")
	p.Type(".replay input[type=text]", t0.Add(-time.Minute).Local().Format("2006-01-02 15:04"))
	p.Click(".replay input[type=checkbox]")
	p.ClickButton(".replay", "Start replay")
	p.WaitText(".replay-status", "Completed: 1 event queued for delivery (failed ones only).")
	p.Screenshot("portal-replay-failed")
	waitFor(t, "the replayed evt_r2", func() bool { return rc.count() > before })
	time.Sleep(time.Second) // nothing else follows
	if ids := rc.webhookIDs()[before:]; len(ids) != 1 || ids[0] != "evt_r2" {
		t.Fatalf("the only-failed replay sent %v, want [evt_r2]", ids)
	}
	replayID := browser.Eval[string](p, `document.querySelector(".replay-status [data-replay]").dataset.replay`)
	if status, r := s.call("GET", "/replays/"+replayID, tenant, nil); status != 200 || r["only_failed"] != true || r["events_enqueued"] != 1.0 {
		t.Fatalf("the replay the page watched: %d %v", status, r)
	}
}

// TestPortalMarksAFailingEndpoint: a delivery exhausts its attempts, so the service marks
// the endpoint failing; the list and the endpoint's page show the mark and since when, the
// log shows the attempts failed for good; once a delivery succeeds again the mark is gone.
func TestPortalMarksAFailingEndpoint(t *testing.T) {
	t.Parallel()
	// Retries at once, so a delivery exhausts its attempts within the test.
	s := newSystem(t, func(o *deliverypkg.Options) {
		o.CacheTTL = 0
		o.Schedule = []time.Duration{0}
	})
	s.run()
	const tenant = "portal-failing"
	rc, answer := newStatusReceiver(t, http.StatusServiceUnavailable)
	epID := s.register(tenant, rc.URL+"/flaky", "export.*")
	s.publishN(tenant, "export.done", 1, time.Now().Add(-2*time.Minute))
	waitFor(t, "the endpoint marked failing", func() bool {
		return s.endpoint(tenant, epID)["failing"] == true
	})

	p := s.openPortal(t, s.token(tenant, allScopes, time.Hour), 1280, 900)
	p.WaitText("main table", "Failing")
	p.WaitText("main table", "since ")
	p.ClickButton("main table", "Manage")
	p.WaitText("main dl.facts", "Deliveries to this endpoint have been failing since ")
	p.WaitText("main dl.facts", "Active")
	p.Do(chromedp.SetValue(chromedp.CSS(".log select"), "dead"))
	browser.Eval[bool](p, `document.querySelector(".log select").dispatchEvent(new Event("change")) || true`)
	p.WaitText(".log table", "Failed for good")
	p.Screenshot("portal-failing")

	// The receiver recovers: the next delivery succeeds and the mark goes.
	answer(http.StatusOK)
	s.publishN(tenant, "export.done", 1, time.Now().Add(-time.Minute))
	waitFor(t, "the endpoint recovered", func() bool {
		return s.endpoint(tenant, epID)["failing"] == false
	})
	p.ClickButton("", "← All endpoints")
	p.WaitText("main table", "/flaky")
	if got := p.Text("main table"); strings.Contains(got, "Failing") {
		t.Fatalf("a recovered endpoint is still marked failing: %s", got)
	}
}
