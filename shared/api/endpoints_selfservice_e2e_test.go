package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/datajetty/webhooks/shared/api"
)

// TestGetEndpoint: one endpoint, in the shape of a listing item; another tenant's or an
// unknown id is 404.
func TestGetEndpoint(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{})
	rc := newReceiver(t)
	created := c.register("acme", rc.url("/get"), "export.*")
	if created.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", created.Status, created.Raw)
	}
	id := created.str("endpoint_id")
	r := c.do("GET", "/endpoints/"+id, "acme", nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET: %d %s", r.Status, r.Raw)
	}
	list := c.do("GET", "/endpoints", "acme", nil, nil)
	items, _ := list.Body["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("list: %s", list.Raw)
	}
	if got, want := string(mustJSON(t, r.Body)), string(mustJSON(t, items[0])); got != want {
		t.Fatalf("GET differs from the listing item:\n get:  %s\n list: %s", got, want)
	}
	if _, leak := r.Body["secret"]; leak {
		t.Fatalf("GET must never show the secret: %s", r.Raw)
	}
	expectError(t, c.do("GET", "/endpoints/"+id, "globex", nil, nil), http.StatusNotFound, "not_found", id)
	expectError(t, c.do("GET", "/endpoints/ep_doesnotexistdoesnotexistdo", "acme", nil, nil), http.StatusNotFound, "not_found", "")
	expectError(t, c.do("GET", "/endpoints/not-an-id", "acme", nil, nil), http.StatusNotFound, "not_found", "")
	r = c.do("PUT", "/endpoints/"+id, "acme", nil, nil)
	expectError(t, r, http.StatusMethodNotAllowed, "invalid_request", "PUT")
	if r.Header.Get("Allow") != "DELETE, GET" {
		t.Fatalf("Allow = %q", r.Header.Get("Allow"))
	}
}

// TestDeleteEndpoint: 204 once, then 404 (or the stored 204 for the same X-Request-Id); the
// version check; another tenant's id; the URL is free again.
func TestDeleteEndpoint(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{})
	rc := newReceiver(t)
	created := c.register("acme", rc.url("/del"))
	id := created.str("endpoint_id")
	path := "/endpoints/" + id

	expectError(t, c.do("DELETE", path, "globex", nil, nil), http.StatusNotFound, "not_found", "")
	r := c.do("DELETE", path+"?version=7", "acme", nil, nil)
	expectError(t, r, http.StatusConflict, "version_conflict", "version")
	if r.str("reason") != "version_mismatch" {
		t.Fatalf("reason %q", r.str("reason"))
	}
	for _, bad := range []string{"0", "-1", "two", "1.5"} {
		r := c.do("DELETE", path+"?version="+bad, "acme", nil, nil)
		expectError(t, r, http.StatusBadRequest, "invalid_request", "version")
		if r.str("field") != "version" {
			t.Fatalf("version=%s: field %q", bad, r.str("field"))
		}
	}
	// An empty, repeated or malformed version is refused, never read as "no version check".
	for _, bad := range []string{"?version=", "?version=1&version=9", "?version=1;x"} {
		r := c.do("DELETE", path+bad, "acme", nil, nil)
		expectError(t, r, http.StatusBadRequest, "invalid_request", "")
		if bad != "?version=1;x" && r.str("field") != "version" {
			t.Fatalf("%s: field %q", bad, r.str("field"))
		}
	}
	if r := c.do("GET", path, "acme", nil, nil); r.Status != http.StatusOK {
		t.Fatalf("refused deletes must leave the endpoint: %d %s", r.Status, r.Raw)
	}

	key := map[string]string{"X-Request-Id": "delete-1"}
	r = c.do("DELETE", path+"?version=1", "acme", nil, key)
	if r.Status != http.StatusNoContent || len(r.Raw) != 0 || r.Header.Get("Content-Type") != "" {
		t.Fatalf("delete: %d %q (Content-Type %q), want an empty 204", r.Status, r.Raw, r.Header.Get("Content-Type"))
	}
	again := c.do("DELETE", path+"?version=1", "acme", nil, key)
	if again.Status != http.StatusNoContent || again.Header.Get("Idempotent-Replayed") != "true" || again.Header.Get("X-Request-Id") != "delete-1" {
		t.Fatalf("repeat with the same X-Request-Id: %d %v, want the stored 204", again.Status, again.Header)
	}
	r = c.do("DELETE", path, "acme", nil, key)
	expectError(t, r, http.StatusConflict, "version_conflict", "")
	if r.str("reason") != "idempotency_key_reused" {
		t.Fatalf("the same key for another request (no version): %s", r.Raw)
	}
	expectError(t, c.do("DELETE", path, "acme", nil, nil), http.StatusNotFound, "not_found", id)
	expectError(t, c.do("GET", path, "acme", nil, nil), http.StatusNotFound, "not_found", id)
	expectError(t, c.do("GET", path+"/deliveries", "acme", nil, nil), http.StatusNotFound, "not_found", id)
	if list := c.do("GET", "/endpoints", "acme", nil, nil); len(list.Body["items"].([]any)) != 0 {
		t.Fatalf("a deleted endpoint is still listed: %s", list.Raw)
	}

	// The URL is free: registering it again is a new endpoint, proven by a new handshake.
	before := rc.challenges.Load()
	fresh := c.register("acme", rc.url("/del"))
	if fresh.Status != http.StatusCreated || fresh.str("endpoint_id") == id || rc.challenges.Load() != before+1 {
		t.Fatalf("re-register the freed url: %d %s (handshakes %d→%d)", fresh.Status, fresh.Raw, before, rc.challenges.Load())
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDisableAndEnable: pausing answers the endpoint with reason tenant (once; a second
// pause changes nothing), resuming runs the handshake (a failing one is 400 on url and
// changes nothing), and both take an empty body or {} and nothing else.
func TestDisableAndEnable(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{})
	rc := newReceiver(t)
	id := c.register("acme", rc.url("/pause")).str("endpoint_id")
	path := "/endpoints/" + id

	// No body and no Content-Type: a pause is a bodiless POST.
	r := c.do("POST", path+"/disable", "acme", nil, nil)
	if r.Status != http.StatusOK || r.str("status") != "disabled" || r.str("disabled_reason") != "tenant" ||
		r.str("disabled_detail") != "paused by the tenant" || r.Body["version"].(float64) != 2 {
		t.Fatalf("disable: %d %s", r.Status, r.Raw)
	}
	if got := c.do("GET", path, "acme", nil, nil); string(mustJSON(t, got.Body)) != string(mustJSON(t, r.Body)) {
		t.Fatalf("GET after disable:\n %s\nwant the disable answer\n %s", got.Raw, r.Raw)
	}
	again := c.do("POST", path+"/disable", "acme", "{}", nil)
	if again.Status != http.StatusOK || again.Body["version"].(float64) != 2 || again.str("disabled_reason") != "tenant" {
		t.Fatalf("disable twice: %d %s, want the endpoint unchanged", again.Status, again.Raw)
	}
	r = c.do("POST", path+"/disable", "acme", `{"reason":"x"}`, nil)
	expectError(t, r, http.StatusBadRequest, "invalid_request", "reason")
	if r.str("field") != "reason" {
		t.Fatalf("unknown field: %s", r.Raw)
	}
	// JSON null is not an object: it would otherwise decode as "no fields given".
	expectError(t, c.do("POST", path+"/disable", "acme", " null ", nil), http.StatusBadRequest, "invalid_request", "JSON object")
	r = c.do("POST", path+"/disable", "acme", "{}", map[string]string{"Content-Type": "text/plain"})
	expectError(t, r, http.StatusBadRequest, "invalid_request", "Content-Type")
	expectError(t, c.do("POST", path+"/disable", "globex", nil, nil), http.StatusNotFound, "not_found", id)
	expectError(t, c.do("POST", "/endpoints/ep_nope/enable", "acme", nil, nil), http.StatusNotFound, "not_found", "")
	r = c.do("GET", path+"/disable", "acme", nil, nil)
	expectError(t, r, http.StatusMethodNotAllowed, "invalid_request", "GET")

	// A paused endpoint cannot be replayed to.
	r = c.do("POST", "/replay", "acme", map[string]any{"endpoint_id": id, "from": nowMinus(1)}, nil)
	expectError(t, r, http.StatusConflict, "version_conflict", "disabled")

	// Resuming proves the URL again; a failing handshake changes nothing.
	before := rc.challenges.Load()
	rc.mode.Store("500")
	r = c.do("POST", path+"/enable", "acme", nil, nil)
	expectError(t, r, http.StatusBadRequest, "invalid_request", "handshake")
	if r.str("field") != "url" || r.str("reason") != "handshake_failed" {
		t.Fatalf("failed handshake: %s", r.Raw)
	}
	if got := c.do("GET", path, "acme", nil, nil); got.str("status") != "disabled" || got.Body["version"].(float64) != 2 {
		t.Fatalf("a failed enable changed the endpoint: %s", got.Raw)
	}
	rc.mode.Store("echo")
	r = c.do("POST", path+"/enable", "acme", "{}", nil)
	if r.Status != http.StatusOK || r.str("status") != "active" || r.Body["version"].(float64) != 3 {
		t.Fatalf("enable: %d %s", r.Status, r.Raw)
	}
	for _, gone := range []string{"disabled_reason", "disabled_detail"} {
		if _, ok := r.Body[gone]; ok {
			t.Fatalf("an active endpoint shows %s: %s", gone, r.Raw)
		}
	}
	if n := rc.challenges.Load() - before; n != 2 {
		t.Fatalf("%d handshakes, want one per enable that had to prove the URL (2)", n)
	}
	if r := c.do("POST", path+"/enable", "acme", nil, nil); r.Status != http.StatusOK || r.Body["version"].(float64) != 3 || rc.challenges.Load()-before != 2 {
		t.Fatalf("enable an active endpoint: %d %s (handshakes %d)", r.Status, r.Raw, rc.challenges.Load()-before)
	}
	// Re-registering keeps working as a way to re-enable.
	c.do("POST", path+"/disable", "acme", nil, nil)
	if r := c.register("acme", rc.url("/pause")); r.Status != http.StatusOK || r.str("status") != "active" {
		t.Fatalf("re-register a paused endpoint: %d %s", r.Status, r.Raw)
	}
}

// hookReceiver answers the handshake and records every other POST, verified with the
// official Standard Webhooks library; it answers with status and body.
type hookReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      []gotHook
	status   int
	response []byte
}

type gotHook struct {
	id, typ  string
	verified bool
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	hr := &hookReceiver{status: http.StatusOK, response: []byte("thanks")}
	hr.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var msg struct{ Type, Challenge string }
		_ = json.Unmarshal(body, &msg)
		if msg.Type == "webhook.challenge" {
			_ = json.NewEncoder(w).Encode(map[string]string{"challenge": msg.Challenge})
			return
		}
		hr.mu.Lock()
		defer hr.mu.Unlock()
		hr.got = append(hr.got, gotHook{id: r.Header.Get("webhook-id"), typ: msg.Type, verified: wh.Verify(body, r.Header) == nil})
		w.WriteHeader(hr.status)
		_, _ = w.Write(hr.response)
	}))
	t.Cleanup(hr.Close)
	return hr
}

func (hr *hookReceiver) answer(status int, body []byte) {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	hr.status, hr.response = status, body
}

func (hr *hookReceiver) hooks() []gotHook {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	return append([]gotHook(nil), hr.got...)
}

// TestTestSend: one signed attempt now, the official verifier accepts it, the answer is
// the attempt with the first KiB of the receiver's response as text, and the delivery log
// shows it as a test; no retry after a failure.
func TestTestSend(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{})
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	hr := newHookReceiver(t, secret)
	r := c.do("POST", "/endpoints", "acme", map[string]any{"url": hr.URL + "/hook", "events": []string{"export.*"}, "secret": secret}, nil)
	id := r.str("endpoint_id")
	path := "/endpoints/" + id + "/test"

	r = c.do("POST", path, "acme", nil, nil)
	if r.Status != http.StatusOK || r.str("status") != "succeeded" || r.Body["http_status"].(float64) != 200 ||
		r.str("event_type") != "webhook.test" || r.str("response_excerpt") != "thanks" || r.Body["response_truncated"] != false ||
		r.str("attempted_at") == "" || r.Body["latency_ms"] == nil {
		t.Fatalf("test: %d %s", r.Status, r.Raw)
	}
	got := hr.hooks()
	if len(got) != 1 || got[0].id != r.str("event_id") || got[0].typ != "webhook.test" || !got[0].verified {
		t.Fatalf("receiver got %+v, want one verified webhook.test with webhook-id %s", got, r.str("event_id"))
	}

	// Another declared type with its example data; a long, not-quite-UTF-8 answer is cut
	// at 1 KiB and shown as text.
	hr.answer(http.StatusOK, append([]byte("\xff\xfe"), bytes.Repeat([]byte("é"), 3000)...))
	r = c.do("POST", path, "acme", map[string]any{"type": "export.done"}, nil)
	excerpt := r.str("response_excerpt")
	if r.Status != http.StatusOK || r.Body["response_truncated"] != true || !utf8.ValidString(excerpt) ||
		!strings.HasPrefix(excerpt, "\uFFFD") || len(excerpt) > 1024+8 || r.str("event_type") != "export.done" {
		t.Fatalf("test with a long answer: %d truncated=%v excerpt %d bytes %q…", r.Status, r.Body["response_truncated"], len(excerpt), excerpt[:min(len(excerpt), 20)])
	}

	// A failing receiver: one attempt, reported failed, no retry.
	hr.answer(http.StatusServiceUnavailable, []byte("down for maintenance"))
	r = c.do("POST", path, "acme", map[string]any{"type": "import.done", "data": map[string]any{"rows": 1}}, nil)
	if r.Status != http.StatusOK || r.str("status") != "failed" || r.Body["http_status"].(float64) != 503 ||
		r.str("error_class") != "http_5xx" || r.str("response_excerpt") != "down for maintenance" {
		t.Fatalf("failing test: %d %s", r.Status, r.Raw)
	}
	if n := len(hr.hooks()); n != 3 {
		t.Fatalf("receiver got %d requests, want 3 (one per test, no retry)", n)
	}

	// The log shows the three tests, marked; a test changes nothing about the endpoint.
	log := c.do("GET", "/endpoints/"+id+"/deliveries", "acme", nil, nil)
	items, _ := log.Body["items"].([]any)
	if len(items) != 3 {
		t.Fatalf("delivery log: %s", log.Raw)
	}
	for _, it := range items {
		if a := it.(map[string]any); a["test"] != true {
			t.Fatalf("a test send is not marked as a test in the log: %v", a)
		}
	}
	if ep := c.do("GET", "/endpoints/"+id, "acme", nil, nil); ep.Body["watermark"] != nil || ep.Body["version"].(float64) != 1 {
		t.Fatalf("a test changed the endpoint: %s", ep.Raw)
	}

	for name, tc := range map[string]struct {
		body  any
		field string
	}{
		"undeclared type": {map[string]any{"type": "export.dnoe"}, "type"},
		"null data":       {`{"data":null}`, "data"},
		"unknown field":   {map[string]any{"payload": 1}, "payload"},
		"wrong type":      {map[string]any{"type": 5}, "type"},
	} {
		r := c.do("POST", path, "acme", tc.body, nil)
		expectError(t, r, http.StatusBadRequest, "invalid_request", "")
		if r.str("field") != tc.field {
			t.Fatalf("%s: field %q, want %q (%s)", name, r.str("field"), tc.field, r.Raw)
		}
	}
	expectError(t, c.do("POST", path, "globex", nil, nil), http.StatusNotFound, "not_found", id)
	if n := len(hr.hooks()); n != 3 {
		t.Fatalf("a refused test reached the receiver (%d requests)", n)
	}
}

// TestTestSendCountsAgainstTheReplayLimit: tests, resends and replays share the replay
// rule (5 a minute per tenant by default).
func TestTestSendCountsAgainstTheReplayLimit(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{limits: api.Limits{Default: api.Rule{Limit: 1000, Window: time.Second}, Replay: api.Rule{Limit: 2, Window: time.Minute}}})
	rc := newReceiver(t)
	id := c.register("acme", rc.url("/limited")).str("endpoint_id")
	for i := 0; i < 2; i++ {
		if r := c.do("POST", "/endpoints/"+id+"/test", "acme", nil, nil); r.Status != http.StatusOK {
			t.Fatalf("test %d: %d %s", i, r.Status, r.Raw)
		}
	}
	r := c.do("POST", "/endpoints/"+id+"/test", "acme", nil, nil)
	expectError(t, r, http.StatusTooManyRequests, "rate_limited", "")
	expectError(t, c.do("POST", "/replay", "acme", map[string]any{"endpoint_id": id, "from": nowMinus(1)}, nil), http.StatusTooManyRequests, "rate_limited", "")
}
