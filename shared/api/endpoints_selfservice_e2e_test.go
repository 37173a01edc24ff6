package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
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
