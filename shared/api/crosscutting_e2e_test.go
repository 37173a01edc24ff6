package api_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/auth"
	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
)

// routeCase is one route with a valid request, to check cross-cutting errors on each.
type routeCase struct {
	name         string
	method, path string
	body         any
	scope        string
}

// routeCases derives one valid request per route of the router (api.Routes), so a new route
// is in every cross-cutting sweep (401, 403, 503) as soon as it exists: path parameters get a
// well-formed id of the right kind, and a route with a body must have a sample below.
func routeCases(t *testing.T, epURL string) []routeCase {
	t.Helper()
	bodies := map[string]any{
		api.RouteRegisterEndpoint: map[string]any{"url": epURL, "events": []string{"export.done"}},
		api.RouteStartReplay:      map[string]any{"endpoint_id": domain.NewID(domain.EndpointIDPrefix), "from": nowMinus(1)},
		api.RouteDisableEndpoint:  map[string]any{},
		api.RouteEnableEndpoint:   map[string]any{},
		api.RouteTestEndpoint:     map[string]any{},
		api.RouteResendDelivery:   map[string]any{},
	}
	params := map[string]string{"endpoint_id": domain.EndpointIDPrefix, "replay_id": domain.ReplayIDPrefix, "event_id": "evt_"}
	var out []routeCase
	for _, rt := range api.Routes() {
		path := rt.Path
		for name, prefix := range params {
			path = strings.ReplaceAll(path, "{"+name+"}", domain.NewID(prefix))
		}
		if strings.Contains(path, "{") {
			t.Fatalf("route %s: no sample value for a parameter of %s; add it to routeCases", rt.Name, rt.Path)
		}
		body, ok := bodies[rt.Name]
		if rt.Method == http.MethodPost && !ok {
			t.Fatalf("route %s: no sample body; add one to routeCases", rt.Name)
		}
		out = append(out, routeCase{rt.Name, rt.Method, path, body, rt.Scope})
	}
	return out
}

func TestAuthErrorsOnEveryRoute(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{})
	rc := newReceiver(t)
	expired, err := w.issuer.MintWith(map[string]any{
		"iss": testIssuer, "aud": testAudience, "sub": "u", "tenant_id": "acme",
		"scope": "webhooks:read webhooks:write webhooks:replay",
		"iat":   time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	good := w.token("acme")
	tampered := good[:len(good)-4] + "AAAA"
	for _, rt := range routeCases(t, rc.url("/h")) {
		t.Run(rt.name, func(t *testing.T) {
			for name, authz := range map[string]string{
				"missing": "", "not bearer": "Basic dXNlcjpwYXNz", "malformed": "Bearer not.a.jwt",
				"expired": "Bearer " + expired, "bad signature": "Bearer " + tampered,
			} {
				hdr := map[string]string{"Authorization": authz}
				r := c.do(rt.method, rt.path, "", rt.body, hdr)
				expectError(t, r, http.StatusUnauthorized, "unauthorized", "")
				if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("%s: 401 without WWW-Authenticate: Bearer", name)
				}
			}
			// A valid token without this route's scope.
			var other []string
			for _, s := range []string{api.ScopeRead, api.ScopeWrite, api.ScopeReplay} {
				if s != rt.scope {
					other = append(other, s)
				}
			}
			tok, _ := w.issuer.Mint("acme", other, time.Hour)
			r := c.do(rt.method, rt.path, "", rt.body, map[string]string{"Authorization": "Bearer " + tok})
			expectError(t, r, http.StatusForbidden, "forbidden", rt.scope)
		})
	}
}

func TestRoutingErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{})
	expectError(t, c.do("GET", "/nope", "acme", nil, nil), http.StatusNotFound, "not_found", "no route")
	r := c.do("DELETE", "/endpoints", "acme", nil, nil)
	expectError(t, r, http.StatusMethodNotAllowed, "invalid_request", "DELETE")
	if r.Header.Get("Allow") != "GET, POST" {
		t.Fatalf("Allow = %q", r.Header.Get("Allow"))
	}
	r = c.do("GET", "/endpoints", "acme", nil, map[string]string{"X-Request-Id": "my-trace-1"})
	if r.Header.Get("X-Request-Id") != "my-trace-1" {
		t.Fatalf("X-Request-Id not echoed: %q", r.Header.Get("X-Request-Id"))
	}
	expectError(t, c.do("GET", "/endpoints", "acme", nil, map[string]string{"X-Request-Id": strings.Repeat("x", 200)}), 400, "invalid_request", "X-Request-Id")
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{})
	rc := newReceiver(t)
	body := map[string]any{"url": rc.url("/idem"), "events": []string{"export.done"}}
	key := map[string]string{"X-Request-Id": "create-1"}

	first := c.do("POST", "/endpoints", "acme", body, key)
	if first.Status != http.StatusCreated {
		t.Fatalf("first: %d %s", first.Status, first.Raw)
	}
	again := c.do("POST", "/endpoints", "acme", body, key)
	if again.Status != http.StatusCreated || !bytes.Equal(again.Raw, first.Raw) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("repeat must replay the first response: %d %s (replayed=%q)", again.Status, again.Raw, again.Header.Get("Idempotent-Replayed"))
	}
	if rc.challenges.Load() != 1 {
		t.Fatalf("repeat re-executed the request (%d handshakes)", rc.challenges.Load())
	}
	if again.Header.Get("Location") == "" || again.Header.Get("Location") != first.Header.Get("Location") {
		t.Fatalf("replayed Location %q, first %q", again.Header.Get("Location"), first.Header.Get("Location"))
	}
	// The generated secret is in both responses, but never in clear in the table.
	secret := first.str("secret")
	items, err := dynamodb.NewFromConfig(w.aws).Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(w.env["WEBHOOKS_IDEMPOTENCY_TABLE"])})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items.Items {
		if raw := fmt.Sprint(it); strings.Contains(raw, strings.TrimPrefix(secret, "whsec_")) {
			t.Fatal("the idempotency table holds a generated secret in clear")
		}
	}
	// The same key for another tenant is that tenant's own key.
	if r := c.do("POST", "/endpoints", "globex", body, key); r.Status != http.StatusCreated || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("another tenant's identical key: %d %s", r.Status, r.Raw)
	}
	// Same key, different request.
	other := map[string]any{"url": rc.url("/other"), "events": []string{"export.done"}}
	r := c.do("POST", "/endpoints", "acme", other, key)
	expectError(t, r, http.StatusConflict, "version_conflict", "different request")
	if r.str("reason") != "idempotency_key_reused" {
		t.Fatalf("reason: %s", r.Raw)
	}

	// Concurrent duplicates: one execution; the others replay it or are told it is running.
	rc.mode.Store("slow")
	dup := map[string]any{"url": rc.url("/dup"), "events": []string{"export.done"}}
	dkey := map[string]string{"X-Request-Id": "dup-1"}
	before := rc.challenges.Load()
	var wg sync.WaitGroup
	results := make([]reply, 5)
	wg.Add(1)
	go func() { defer wg.Done(); results[0] = c.do("POST", "/endpoints", "acme", dup, dkey) }()
	waitFor(t, func() bool { return rc.challenges.Load() == before+1 })
	// The duplicates are answered while the first is still running (its handshake waits for
	// the release), however long they take to arrive on a busy machine.
	var answered atomic.Int32
	for i := 1; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c.do("POST", "/endpoints", "acme", dup, dkey)
			answered.Add(1)
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for answered.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	early := answered.Load()
	rc.release <- struct{}{}
	wg.Wait()
	if early < 4 {
		t.Fatalf("duplicates of a running request were not answered until it finished: %+v", results[1:])
	}
	if rc.challenges.Load() != before+1 {
		t.Fatalf("concurrent duplicates executed %d times", rc.challenges.Load()-before)
	}
	if results[0].Status != http.StatusCreated {
		t.Fatalf("first duplicate: %d %s", results[0].Status, results[0].Raw)
	}
	for _, r := range results[1:] {
		if r.Status != http.StatusConflict || r.str("reason") != "request_in_progress" {
			t.Fatalf("duplicate while running: %d %s", r.Status, r.Raw)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not reached in 5 s")
}

func TestRateLimitSharedAcrossInstances(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	limits := api.Limits{Default: api.Rule{Limit: 10, Window: time.Minute}, Replay: api.Rule{Limit: 2, Window: time.Minute}}
	emf := &testenv.Buffer{}
	a := w.server(serverOpts{limits: limits, emf: emf})
	b := w.server(serverOpts{limits: limits, emf: emf})
	// A sliding window shared by both instances: 30 concurrent requests admit exactly 10,
	// whenever they arrive.
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted, limited := 0, 0
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := a
			if i%2 == 1 {
				cl = b
			}
			r := cl.do("GET", "/endpoints", "burst", nil, nil)
			mu.Lock()
			defer mu.Unlock()
			switch r.Status {
			case http.StatusOK:
				admitted++
			case http.StatusTooManyRequests:
				limited++
				expectError(t, r, http.StatusTooManyRequests, "rate_limited", "rate limit")
				if r.Header.Get("Retry-After") == "" || r.Header.Get("RateLimit-Limit") != "10" || r.Header.Get("RateLimit-Remaining") != "0" || r.Header.Get("RateLimit-Reset") == "" {
					t.Errorf("429 headers: %v", r.Header)
				}
			default:
				t.Errorf("unexpected %d %s", r.Status, r.Raw)
			}
		}()
	}
	wg.Wait()
	if admitted != 10 || limited != 20 {
		t.Fatalf("two instances admitted %d and limited %d of 30; want 10 and 20", admitted, limited)
	}
	if got := metricTotal(t, emf.String(), "RequestsRateLimited"); got != float64(limited) {
		t.Fatalf("RequestsRateLimited metric = %v, want %d", got, limited)
	}
	r := a.do("GET", "/endpoints", "quiet-tenant", nil, nil)
	if r.Header.Get("RateLimit-Limit") != "10" || r.Header.Get("RateLimit-Remaining") != "9" {
		t.Fatalf("RateLimit headers on success: %v", r.Header)
	}
	// Replay has its own stricter rule.
	for i := 0; i < 3; i++ {
		r := a.do("POST", "/replay", "replayer", map[string]any{"endpoint_id": "ep_doesnotexistdoesnotexist", "from": nowMinus(1)}, nil)
		want := http.StatusNotFound
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if r.Status != want {
			t.Fatalf("replay %d: %d %s", i, r.Status, r.Raw)
		}
		if got := r.Header.Get("RateLimit-Limit"); got != "2" {
			t.Fatalf("replay RateLimit-Limit %q", got)
		}
	}
}

// TestRateLimitAtWindowEdges: the default rule (10 per second) holds over every 1-second
// interval, not only over aligned seconds: ten requests at .95 s leave no room at 1.05 s,
// and the headers say when there is (a fixed window let 20 through in 0.1 s here).
func TestRateLimitAtWindowEdges(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var clock atomic.Int64
	base := time.Now().Truncate(time.Second).Add(time.Hour)
	set := func(ms int) { clock.Store(base.Add(time.Duration(ms) * time.Millisecond).UnixNano()) }
	c := w.server(serverOpts{limits: api.DefaultLimits(), now: func() time.Time { return time.Unix(0, clock.Load()) }})
	set(950)
	for i := range 10 {
		r := c.do("GET", "/endpoints", "edge", nil, nil)
		if r.Status != http.StatusOK || r.Header.Get("RateLimit-Remaining") != fmt.Sprint(9-i) || r.Header.Get("RateLimit-Reset") != "1" {
			t.Fatalf("request %d at 0.95 s: %d, headers %v", i+1, r.Status, r.Header)
		}
	}
	set(1050)
	r := c.do("GET", "/endpoints", "edge", nil, nil)
	expectError(t, r, http.StatusTooManyRequests, "rate_limited", "retry after 1 s")
	if r.Header.Get("Retry-After") != "1" || r.Header.Get("RateLimit-Remaining") != "0" || r.Header.Get("RateLimit-Reset") != "1" {
		t.Fatalf("429 at 1.05 s: headers %v", r.Header)
	}
	set(1949)
	if r := c.do("GET", "/endpoints", "edge", nil, nil); r.Status != http.StatusTooManyRequests {
		t.Fatalf("at 1.949 s the ten of 0.95 s are still within the second: %d", r.Status)
	}
	set(1950)
	if r := c.do("GET", "/endpoints", "edge", nil, nil); r.Status != http.StatusOK || r.Header.Get("RateLimit-Remaining") != "9" {
		t.Fatalf("at 1.95 s: %d %v", r.Status, r.Header)
	}
}

func TestDependencyDownIs503OnEveryRoute(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// The functions reach AWS through a switchable proxy: up while the handler is built
	// (the cursor key is read at cold start), then down (connections dropped).
	base := testenv.AWSConfig(t)
	var down atomic.Bool
	target, _ := url.Parse(*base.BaseEndpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if down.Load() {
			if hj, ok := rw.(http.Hijacker); ok {
				conn, _, _ := hj.Hijack()
				conn.Close()
				return
			}
		}
		rp.ServeHTTP(rw, r)
	}))
	t.Cleanup(proxy.Close)
	flaky := base.Copy()
	flaky.BaseEndpoint = aws.String(proxy.URL)
	flaky.RetryMaxAttempts = 2
	c := w.server(serverOpts{aws: &flaky})
	rc := newReceiver(t)
	down.Store(true)
	for _, rt := range routeCases(t, rc.url("/h")) {
		t.Run(rt.name, func(t *testing.T) {
			r := c.do(rt.method, rt.path, "acme", rt.body, nil)
			expectError(t, r, http.StatusServiceUnavailable, "dependency_down", "")
			if r.Header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			if strings.Contains(string(r.Raw), "127.0.0.1") || strings.Contains(strings.ToLower(string(r.Raw)), "eof") {
				t.Fatalf("503 leaks internals: %s", r.Raw)
			}
		})
	}
}

func TestPanicIs500WithoutInternals(t *testing.T) {
	t.Parallel()
	if _, err := api.NewHandler(api.Deps{Auth: panickingAuth{}}, api.RouteGetReplay); err == nil {
		t.Fatal("NewHandler must refuse a missing RateLimiter")
	}
	if _, err := api.NewHandler(api.Deps{Auth: panickingAuth{}, RateLimiter: noLimit{}}, api.RouteGetReplay); err == nil {
		t.Fatal("NewHandler must refuse a route without its service")
	}
	var logs bytes.Buffer
	h, err := api.NewHandler(api.Deps{Auth: panickingAuth{}, RateLimiter: noLimit{}, Replays: &app.Replays{}, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}, api.RouteGetReplay)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", api.BasePath+"/replays/rp_x", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `"error":"internal_error"`) {
		t.Fatalf("panic: %d %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "deadbeef") || strings.Contains(rec.Body.String(), "panic") {
		t.Fatalf("500 leaks internals: %s", rec.Body)
	}
	if !strings.Contains(logs.String(), "deadbeef") {
		t.Fatal("the panic must be logged for operators")
	}
}

type panickingAuth struct{}

func (panickingAuth) Verify(context.Context, string) (auth.Principal, error) {
	panic("internal state 0xdeadbeef")
}

type noLimit struct{}

func (noLimit) Take(_ context.Context, _, _ string, _ int, window time.Duration, now time.Time) (app.RateDecision, error) {
	return app.RateDecision{Allowed: true, Count: 1, Reset: now.Add(window)}, nil
}

// TestQueryParametersAreUnambiguous: a query parameter that is present must have one usable
// value: empty (which would silently mean the default; the cursor aside) or repeated is 400
// naming it, and a query string that does not decode is 400 rather than partly ignored.
func TestQueryParametersAreUnambiguous(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{})
	ep := domain.NewID(domain.EndpointIDPrefix)
	for _, tc := range []struct{ path, field string }{
		{"/endpoints?limit=", "limit"},
		{"/endpoints?limit=1&limit=2", "limit"},
		{"/endpoints?cursor=a.b&cursor=c.d", "cursor"},
		{"/endpoints?limit=%zz", ""},
		{"/endpoints/" + ep + "/deliveries?status=", "status"},
		{"/endpoints/" + ep + "/deliveries?status=dead&status=pending", "status"},
		{"/endpoints/" + ep + "/deliveries?limit=", "limit"},
	} {
		r := c.do("GET", tc.path, "acme", nil, nil)
		expectError(t, r, http.StatusBadRequest, "invalid_request", "")
		if r.str("field") != tc.field {
			t.Errorf("%s: field %q, want %q (%s)", tc.path, r.str("field"), tc.field, r.Raw)
		}
	}
	if r := c.do("GET", "/endpoints?limit=2&unrelated=", "acme", nil, nil); r.Status != http.StatusOK {
		t.Fatalf("an unknown parameter is ignored: %d %s", r.Status, r.Raw)
	}
	// An empty cursor is the first page: what a paging loop sends before it has a cursor.
	for _, path := range []string{"/endpoints?cursor=", "/endpoints/" + ep + "/deliveries?cursor="} {
		if r := c.do("GET", path, "acme", nil, nil); r.Status != http.StatusOK && r.Status != http.StatusNotFound {
			t.Fatalf("%s: %d %s", path, r.Status, r.Raw)
		}
	}
}
