package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/delivery"
	"github.com/datajetty/webhooks/shared/dev/testenv"
)

func TestRegisterCreatesThenUpserts(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{})
	rc := newReceiver(t)

	r := c.register("acme", rc.url("/hook"), "export.done", "export.*")
	if r.Status != http.StatusCreated || r.str("status") != "active" || !strings.HasPrefix(r.str("endpoint_id"), "ep_") {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	if !strings.HasPrefix(r.str("secret"), "whsec_") {
		t.Fatalf("create without secret must return the generated secret once: %s", r.Raw)
	}
	if r.Header.Get("Location") == "" || r.Body["version"].(float64) != 1 {
		t.Fatalf("create: missing Location or version 1: %v %s", r.Header, r.Raw)
	}
	id := r.str("endpoint_id")
	if rc.challenges.Load() != 1 {
		t.Fatalf("create must run one challenge handshake, ran %d", rc.challenges.Load())
	}

	// Same URL again: an update of the same endpoint; events-only change needs no handshake.
	r = c.register("acme", rc.url("/hook"), "import.done")
	if r.Status != http.StatusOK || r.str("endpoint_id") != id || r.Body["version"].(float64) != 2 {
		t.Fatalf("upsert by url: %d %s", r.Status, r.Raw)
	}
	if _, ok := r.Body["secret"]; ok {
		t.Fatalf("update must never return the secret: %s", r.Raw)
	}
	if rc.challenges.Load() != 1 {
		t.Fatalf("an events-only update must not re-run the handshake")
	}

	// By endpoint_id with a URL change: handshake against the new URL.
	r = c.do("POST", "/endpoints", "acme", map[string]any{"endpoint_id": id, "url": rc.url("/new"), "events": []string{"*"}, "version": 2}, nil)
	if r.Status != http.StatusOK || r.str("url") != rc.url("/new") || r.Body["version"].(float64) != 3 {
		t.Fatalf("update by id: %d %s", r.Status, r.Raw)
	}
	if rc.challenges.Load() != 2 {
		t.Fatalf("a URL change must re-run the handshake")
	}
	// The old URL is free again: registering it creates a new endpoint.
	r = c.register("acme", rc.url("/hook"))
	if r.Status != http.StatusCreated || r.str("endpoint_id") == id {
		t.Fatalf("old url after move: %d %s", r.Status, r.Raw)
	}

	// Secret given on create is not echoed; a secret change rotates with a grace period.
	r = c.do("POST", "/endpoints", "acme", map[string]any{"url": rc.url("/s"), "events": []string{"export.done"}, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, nil)
	if r.Status != http.StatusCreated || r.str("secret") != "" {
		t.Fatalf("create with secret: %d %s", r.Status, r.Raw)
	}
	r = c.do("POST", "/endpoints", "acme", map[string]any{"url": rc.url("/s"), "events": []string{"export.done"}, "secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}, nil)
	if r.Status != http.StatusOK || r.str("previous_secret_expires_at") == "" || r.str("secret") != "" {
		t.Fatalf("secret rotation: %d %s", r.Status, r.Raw)
	}
	// The rotating answer says when the new secret signs every delivery: the deliver
	// function's endpoint cache may sign with the previous secret only until then.
	updated, err1 := time.Parse(time.RFC3339Nano, r.str("updated_at"))
	effective, err2 := time.Parse(time.RFC3339Nano, r.str("secret_effective_at"))
	if err1 != nil || err2 != nil || effective.Sub(updated) != delivery.DefaultOptions().CacheTTL {
		t.Fatalf("secret_effective_at must be updated_at + the deliver cache's %s: %s", delivery.DefaultOptions().CacheTTL, r.Raw)
	}
	// Only the rotating answer has it: not a create, not an update that keeps the secret.
	r = c.do("POST", "/endpoints", "acme", map[string]any{"url": rc.url("/s"), "events": []string{"import.done"}}, nil)
	if _, ok := r.Body["secret_effective_at"]; r.Status != http.StatusOK || ok {
		t.Fatalf("update without rotation: %d %s", r.Status, r.Raw)
	}
	r = c.do("POST", "/endpoints", "acme", map[string]any{"url": rc.url("/s2"), "events": []string{"export.done"}, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, nil)
	if _, ok := r.Body["secret_effective_at"]; r.Status != http.StatusCreated || ok {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
}

func TestVersionConflicts(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{})
	rc := newReceiver(t)
	id := c.register("acme", rc.url("/v")).str("endpoint_id")

	r := c.do("POST", "/endpoints", "acme", map[string]any{"endpoint_id": id, "url": rc.url("/v"), "events": []string{"import.done"}, "version": 7}, nil)
	expectError(t, r, http.StatusConflict, "version_conflict", "version 1")
	if r.str("reason") != "version_mismatch" {
		t.Fatalf("reason: %s", r.Raw)
	}

	// Concurrent updates from the same version: exactly one wins, the rest are 409.
	// Eight different subscriptions, so every request is a real change.
	patterns := []string{"export.done", "export.failed", "export.started", "import.done", "import.failed", "export.*", "import.*", "*"}
	const n = 8
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = c.do("POST", "/endpoints", "acme", map[string]any{"endpoint_id": id, "url": rc.url("/v"), "events": []string{patterns[i]}, "version": 1}, nil).Status
		}()
	}
	wg.Wait()
	ok, conflict := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusConflict:
			conflict++
		}
	}
	if ok != 1 || conflict != n-1 {
		t.Fatalf("concurrent updates: %d won, %d conflicted (statuses %v); want exactly one winner", ok, conflict, statuses)
	}
	list := c.do("GET", "/endpoints", "acme", nil, nil)
	items := list.Body["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["version"].(float64) != 2 {
		t.Fatalf("after the race the endpoint must be at version 2: %s", list.Raw)
	}
}

func TestRegisterValidation(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{})
	strict := w.server(serverOpts{env: map[string]string{"WEBHOOKS_ALLOW_PRIVATE_TARGETS": "false"}})
	long := "https://example.com/" + strings.Repeat("a", 2048)
	type tcase struct {
		name, body, field string
		strict            bool
	}
	cases := []tcase{
		{"malformed json", `{"url":`, "", false},
		{"not an object", `[1,2]`, "", false},
		{"unknown field", `{"url":"https://example.com/h","events":["export.done"],"colour":"red"}`, "colour", false},
		{"trailing data", `{"url":"https://example.com/h","events":["export.done"]} {}`, "", false},
		{"empty body", ``, "", false},
		{"missing url", `{"events":["export.done"]}`, "url", false},
		{"relative url", `{"url":"/hook","events":["export.done"]}`, "url", false},
		{"ftp url", `{"url":"ftp://example.com/h","events":["export.done"]}`, "url", false},
		{"http url in production", `{"url":"http://example.com/h","events":["export.done"]}`, "url", true},
		{"user info", `{"url":"https://u:p@example.com/h","events":["export.done"]}`, "url", false},
		{"fragment", `{"url":"https://example.com/h#frag","events":["export.done"]}`, "url", false},
		{"too long", `{"url":"` + long + `","events":["export.done"]}`, "url", false},
		{"url not a string", `{"url":5,"events":["export.done"]}`, "url", false},
		{"no events", `{"url":"https://example.com/h","events":[]}`, "events", false},
		{"events missing", `{"url":"https://example.com/h"}`, "events", false},
		{"bad event name", `{"url":"https://example.com/h","events":["Export Done"]}`, "events", false},
		{"bad wildcard", `{"url":"https://example.com/h","events":["ex*"]}`, "events", false},
		{"too many events", `{"url":"https://example.com/h","events":[` + strings.TrimSuffix(strings.Repeat(`"export.done",`, 51), ",") + `]}`, "events", false},
		{"events not strings", `{"url":"https://example.com/h","events":[1]}`, "events", false},
		{"secret no prefix", `{"url":"https://example.com/h","events":["export.done"],"secret":"abc"}`, "secret", false},
		{"secret too short", `{"url":"https://example.com/h","events":["export.done"],"secret":"whsec_YWJj"}`, "secret", false},
		{"secret not base64", `{"url":"https://example.com/h","events":["export.done"],"secret":"whsec_!!!!"}`, "secret", false},
		{"version zero", `{"url":"https://example.com/h","events":["export.done"],"version":0}`, "version", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := c
			if tc.strict {
				cl = strict
			}
			r := cl.do("POST", "/endpoints", "acme", tc.body, nil)
			expectError(t, r, http.StatusBadRequest, "invalid_request", tc.field)
			var sent struct{ Secret string }
			_ = json.Unmarshal([]byte(tc.body), &sent)
			if sent.Secret != "" && strings.Contains(string(r.Raw), strings.TrimPrefix(sent.Secret, "whsec_")) {
				t.Fatalf("error echoes the secret: %s", r.Raw)
			}
		})
	}
	t.Run("wrong content type", func(t *testing.T) {
		r := c.do("POST", "/endpoints", "acme", `{}`, map[string]string{"Content-Type": "text/plain"})
		expectError(t, r, http.StatusBadRequest, "invalid_request", "Content-Type")
	})
	t.Run("body over 64 KiB", func(t *testing.T) {
		big := `{"url":"https://example.com/h","events":["export.done"],"secret":"` + strings.Repeat("x", 70<<10) + `"}`
		r := c.do("POST", "/endpoints", "acme", big, nil)
		expectError(t, r, http.StatusBadRequest, "invalid_request", "64 KiB")
	})
	// Nothing was stored by any of the refused requests.
	if items := c.do("GET", "/endpoints", "acme", nil, nil).Body["items"].([]any); len(items) != 0 {
		t.Fatalf("refused requests stored endpoints: %v", items)
	}
}

func TestHandshakeFailuresStoreNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	emf := &testenv.Buffer{}
	c := w.server(serverOpts{emf: emf})
	cases := []struct{ mode, mention string }{
		{"500", "500"},
		{"wrong", "echo"},
		{"redirect", "redirect"},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			rc := newReceiver(t)
			rc.mode.Store(tc.mode)
			r := c.register("acme", rc.url("/h"))
			expectError(t, r, http.StatusBadRequest, "invalid_request", tc.mention)
			if r.str("reason") != "handshake_failed" || r.str("field") != "url" {
				t.Fatalf("handshake failure must say so: %s", r.Raw)
			}
		})
	}
	t.Run("plain echo succeeds", func(t *testing.T) {
		rc := newReceiver(t)
		rc.mode.Store("echo-plain")
		if r := c.register("acme", rc.url("/plain")); r.Status != http.StatusCreated {
			t.Fatalf("plain-text echo: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		rc := newReceiver(t)
		u := rc.url("/h")
		rc.Close()
		expectError(t, c.register("acme", u), http.StatusBadRequest, "invalid_request", "")
	})
	t.Run("timeout", func(t *testing.T) {
		if testing.Short() {
			t.Skip("waits for the 5 s handshake timeout")
		}
		rc := newReceiver(t)
		rc.mode.Store("slow")
		expectError(t, c.register("acme", rc.url("/slow")), http.StatusBadRequest, "invalid_request", "5s")
	})
	items := c.do("GET", "/endpoints", "acme", nil, nil).Body["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("only the plain-echo endpoint may be stored, got %d", len(items))
	}
	want := 4.0 // 500, wrong echo, redirect, connection refused
	if !testing.Short() {
		want++ // timeout
	}
	if got := metricTotal(t, emf.String(), "HandshakesFailed"); got != want {
		t.Fatalf("HandshakesFailed metric = %v, want %v", got, want)
	}
}

func TestSSRFRefusedWithSwitchOff(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{env: map[string]string{"WEBHOOKS_ALLOW_PRIVATE_TARGETS": "false"}})
	rc := newReceiver(t)
	port := rc.Listener.Addr().String()[strings.LastIndex(rc.Listener.Addr().String(), ":")+1:]
	// The URL and the phrase its 400 must contain: the registration check names the same
	// category as the dial-time guard, whose rules it applies.
	named := map[string]string{
		"https://[64:ff9b::a00:1]/h":    "NAT64",
		"https://[2002:a00:1::1]/h":     "6to4",
		"https://[::a00:1]/h":           "reserved",
		"https://2130706433:" + port:    "non-standard form",
		"https://0x7f000001:" + port:    "non-standard form",
		"https://017700000001:" + port:  "non-standard form",
		"https://127.1:" + port + "/h":  "non-standard form",
		"https://exa_mple.com/h":        "not a valid host name",
		"https://169.254.169.254/x":     "cloud metadata",
		"https://[::ffff:10.0.0.1]/h/x": "IPv4-mapped",
	}
	for u, phrase := range named {
		t.Run(u, func(t *testing.T) {
			r := c.register("acme", u)
			expectError(t, r, http.StatusBadRequest, "invalid_request", phrase)
			if r.str("field") != "url" {
				t.Fatalf("field %q", r.str("field"))
			}
		})
	}
	targets := []string{
		"https://127.0.0.1:" + port + "/h",
		"https://10.0.0.1/h",
		"https://172.16.5.4/h",
		"https://192.168.1.1/h",
		"https://169.254.10.10/h",
		"https://169.254.169.254/latest/meta-data/",
		"https://[::1]:" + port + "/h",
		"https://[::ffff:127.0.0.1]:" + port + "/h",
		"https://[::ffff:10.0.0.1]/h",
		"https://100.64.0.1/h",
		"https://localhost:" + port + "/h",
	}
	for _, u := range targets {
		t.Run(u, func(t *testing.T) {
			expectError(t, c.register("acme", u), http.StatusBadRequest, "invalid_request", "")
		})
	}
	if n := rc.challenges.Load(); n != 0 {
		t.Fatalf("a refused destination received %d requests", n)
	}
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{})
	rc := newReceiver(t)
	const total = 160
	want := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range total {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r := c.register("acme", rc.url(fmt.Sprintf("/h/%d", i)))
			if r.Status != http.StatusCreated {
				t.Errorf("register %d: %d %s", i, r.Status, r.Raw)
				return
			}
			mu.Lock()
			want[r.str("endpoint_id")] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		path := "/endpoints?limit=50"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := c.do("GET", path, "acme", nil, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("page %d: %d %s", pages, r.Status, r.Raw)
		}
		pages++
		for _, it := range r.Body["items"].([]any) {
			m := it.(map[string]any)
			id := m["endpoint_id"].(string)
			if seen[id] {
				t.Fatalf("duplicate %s on page %d", id, pages)
			}
			seen[id] = true
			if _, ok := m["secret"]; ok {
				t.Fatal("list shows a secret")
			}
		}
		cursor = r.str("next_cursor")
		if cursor == "" {
			break
		}
	}
	if len(seen) != total || pages != 4 {
		t.Fatalf("saw %d endpoints over %d pages, want %d over 4", len(seen), pages, total)
	}
	for id := range want {
		if !seen[id] {
			t.Fatalf("gap: %s never listed", id)
		}
	}

	// Cursor checks: forged, edited and another tenant's cursors are refused.
	first := c.do("GET", "/endpoints?limit=10", "acme", nil, nil).str("next_cursor")
	expectError(t, c.do("GET", "/endpoints?cursor=forged", "acme", nil, nil), 400, "invalid_request", "cursor")
	expectError(t, c.do("GET", "/endpoints?cursor="+first[:len(first)-2]+"xx", "acme", nil, nil), 400, "invalid_request", "cursor")
	expectError(t, c.do("GET", "/endpoints?cursor="+first, "globex", nil, nil), 400, "invalid_request", "cursor")
	for _, l := range []string{"0", "101", "ten", "-1"} {
		expectError(t, c.do("GET", "/endpoints?limit="+l, "acme", nil, nil), 400, "invalid_request", "limit")
	}
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{})
	rc := newReceiver(t)
	a := c.register("tenant-a", rc.url("/a"))
	id := a.str("endpoint_id")

	if items := c.do("GET", "/endpoints", "tenant-b", nil, nil).Body["items"].([]any); len(items) != 0 {
		t.Fatalf("tenant B sees A's endpoints: %v", items)
	}
	r := c.do("POST", "/endpoints", "tenant-b", map[string]any{"endpoint_id": id, "url": rc.url("/a"), "events": []string{"import.done"}}, nil)
	expectError(t, r, http.StatusNotFound, "not_found", id)
	r = c.do("POST", "/replay", "tenant-b", map[string]any{"endpoint_id": id, "from": nowMinus(1)}, nil)
	expectError(t, r, http.StatusNotFound, "not_found", "")
	// The same URL under B is B's own endpoint, not A's.
	b := c.register("tenant-b", rc.url("/a"))
	if b.Status != http.StatusCreated || b.str("endpoint_id") == id {
		t.Fatalf("tenant B registering the same URL: %d %s", b.Status, b.Raw)
	}
	rp := c.do("POST", "/replay", "tenant-a", map[string]any{"endpoint_id": id, "from": nowMinus(1)}, nil)
	expectError(t, c.do("GET", "/replays/"+rp.str("replay_id"), "tenant-b", nil, nil), http.StatusNotFound, "not_found", "")
}
