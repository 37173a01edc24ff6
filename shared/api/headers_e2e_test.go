package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/dev/testenv"
)

// TestHeadersMustBeUnambiguous: credentials and idempotency keys are taken from exactly one
// header value; two values, or an empty one, are refused instead of one being picked.
func TestHeadersMustBeUnambiguous(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	logs := &testenv.Buffer{}
	c := w.server(serverOpts{logs: logs})
	rc := newReceiver(t)
	tokA, tokB := w.token("tenant-a"), w.token("tenant-b")
	list := func(hdr http.Header) reply {
		t.Helper()
		req, err := http.NewRequest("GET", c.base+"/endpoints", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = hdr
		return c.send(req)
	}

	t.Run("two Authorization headers", func(t *testing.T) {
		// Tenant B's token, then tenant A's: neither wins.
		r := list(http.Header{"Authorization": {"Bearer " + tokB, "Bearer " + tokA}})
		expectError(t, r, http.StatusUnauthorized, "unauthorized", "exactly one Authorization header")
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("401 without WWW-Authenticate: %v", r.Header)
		}
		// A valid token followed by garbage, as two headers and as API Gateway joins them.
		expectError(t, list(http.Header{"Authorization": {"Bearer " + tokA, "garbage"}}), http.StatusUnauthorized, "unauthorized", "exactly one")
		expectError(t, list(http.Header{"Authorization": {"Bearer " + tokA + ",garbage"}}), http.StatusUnauthorized, "unauthorized", "malformed token")
		expectError(t, list(http.Header{"Authorization": {"Bearer " + tokA + ", Bearer " + tokB}}), http.StatusUnauthorized, "unauthorized", "malformed token")
		if r := list(http.Header{"Authorization": {"Bearer " + tokA}}); r.Status != http.StatusOK {
			t.Fatalf("one token: %d %s", r.Status, r.Raw)
		}
	})

	t.Run("X-Request-Id present but unusable", func(t *testing.T) {
		for name, vals := range map[string][]string{
			"empty":     {""},
			"twice":     {"key-1", "key-2"},
			"comma":     {"key-1,key-2"},
			"too long":  {strings.Repeat("k", api.MaxRequestIDLength+1)},
			"non-ASCII": {"clé"},
			"space":     {"a b"},
		} {
			hdr := http.Header{"Authorization": {"Bearer " + tokA}, "X-Request-Id": vals}
			expectError(t, list(hdr), http.StatusBadRequest, "invalid_request", "X-Request-Id")
			// On POST it must not run (without idempotency) either.
			req, err := http.NewRequest("POST", c.base+"/endpoints", strings.NewReader(`{"url":"`+rc.url("/x-"+strings.ReplaceAll(name, " ", "-"))+`","events":["export.done"]}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header = hdr.Clone()
			req.Header.Set("Content-Type", "application/json")
			r := c.send(req)
			expectError(t, r, http.StatusBadRequest, "invalid_request", "X-Request-Id")
			if r.str("field") != "X-Request-Id" {
				t.Fatalf("%s: field %q", name, r.str("field"))
			}
		}
		if n := rc.challenges.Load(); n != 0 {
			t.Fatalf("a POST with an unusable X-Request-Id ran (%d handshakes)", n)
		}
		hdr := http.Header{"Authorization": {"Bearer " + tokA}, "X-Request-Id": {strings.Repeat("k", api.MaxRequestIDLength)}}
		if r := list(hdr); r.Status != http.StatusOK || r.Header.Get("X-Request-Id") != hdr.Get("X-Request-Id") {
			t.Fatalf("128-character X-Request-Id: %d %s", r.Status, r.Raw)
		}
	})

	t.Run("oversized tenant claim", func(t *testing.T) {
		long := strings.Repeat("T", 2100)
		tok, err := w.issuer.Mint(long, []string{api.ScopeRead, api.ScopeWrite, api.ScopeReplay}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for _, method := range []string{"GET", "POST"} {
			req, err := http.NewRequest(method, c.base+"/endpoints", strings.NewReader(`{"url":"`+rc.url("/long")+`","events":["export.done"]}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Request-Id", "long-tenant-"+method)
			r := c.send(req)
			expectError(t, r, http.StatusUnauthorized, "unauthorized", "not a valid tenant id")
			if strings.Contains(string(r.Raw), "TTTTTTTT") {
				t.Fatalf("the 401 repeats the tenant claim: %s", r.Raw)
			}
		}
		if strings.Contains(logs.String(), "TTTTTTTT") {
			t.Fatal("the oversized tenant claim was logged")
		}
		// The longest valid tenant id works on the routes that build keys from it.
		edge := strings.Repeat("t", 128)
		if r := c.register(edge, rc.url("/edge")); r.Status != http.StatusCreated {
			t.Fatalf("128-character tenant: %d %s", r.Status, r.Raw)
		}
	})
}
