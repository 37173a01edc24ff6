package lambdaapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/auth"
	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/dev/devissuer"
	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/lambdaapi"
	"github.com/datajetty/webhooks/shared/portal"
	"github.com/datajetty/webhooks/shared/wiring"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestFixturesThroughLambdaEntryPath feeds each events/ fixture, as raw JSON, through the
// same path a deployed function runs: lambda.NewHandler (the runtime's decoding) → the
// api-proxy adapter → the shared handler built with only that function's route.
func TestFixturesThroughLambdaEntryPath(t *testing.T) {
	stack := testenv.Stack(t, nil)
	iss, err := devissuer.New("https://issuer.test/", "webhooks-test")
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(iss.JWKSHandler())
	defer jwks.Close()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c struct{ Challenge string }
		_ = json.NewDecoder(r.Body).Decode(&c)
		_ = json.NewEncoder(w).Encode(map[string]string{"challenge": c.Challenge})
	}))
	defer receiver.Close()
	env := map[string]string{}
	for k, v := range stack.Env {
		env[k] = v
	}
	for k, v := range map[string]string{
		"WEBHOOKS_JWKS_URL": jwks.URL, "WEBHOOKS_JWT_ISSUER": "https://issuer.test/",
		"WEBHOOKS_JWT_AUDIENCE": "webhooks-test", "WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
	} {
		env[k] = v
	}
	cfg, err := config.FromMap(env)
	if err != nil {
		t.Fatal(err)
	}
	token, err := iss.Mint("fixture-tenant", []string{api.ScopeRead, api.ScopeWrite, api.ScopeReplay}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	functions := map[string]string{} // route name → handler-produced ids, filled as we go
	invoke := func(t *testing.T, route, fixture string, edit func(ev map[string]any)) events.APIGatewayV2HTTPResponse {
		t.Helper()
		// One tenant sends every fixture within a second or two: more than the default
		// 10 requests/s, which is not what this test is about.
		limits := api.DefaultLimits()
		limits.Default.Limit = 1000
		h, err := wiring.API(context.Background(), cfg, testenv.AWSConfig(t), wiring.APIOptions{Logger: slog.New(slog.DiscardHandler), Limits: limits}, route)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "events", fixture))
		if err != nil {
			t.Fatal(err)
		}
		var ev map[string]any
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatalf("%s is not JSON: %v", fixture, err)
		}
		ev["headers"].(map[string]any)["authorization"] = "Bearer " + token
		if edit != nil {
			edit(ev)
		}
		payload, _ := json.Marshal(ev)
		out, err := lambda.NewHandler(lambdaapi.Handler(h)).Invoke(context.Background(), payload)
		if err != nil {
			t.Fatalf("invoke %s: %v", fixture, err)
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("response of %s: %v", fixture, err)
		}
		return resp
	}
	setBody := func(fields map[string]any) func(map[string]any) {
		return func(ev map[string]any) {
			var b map[string]any
			_ = json.Unmarshal([]byte(ev["body"].(string)), &b)
			for k, v := range fields {
				b[k] = v
			}
			raw, _ := json.Marshal(b)
			ev["body"] = string(raw)
		}
	}

	resp := invoke(t, api.RouteRegisterEndpoint, "register-endpoint.json", setBody(map[string]any{"url": receiver.URL + "/datajetty"}))
	if resp.StatusCode != http.StatusCreated || !strings.Contains(resp.Body, `"endpoint_id":"ep_`) {
		t.Fatalf("register-endpoint.json: %d %s", resp.StatusCode, resp.Body)
	}
	if resp.Headers["X-Request-Id"] != "sample-post-endpoints" {
		t.Fatalf("X-Request-Id from the fixture not echoed: %v", resp.Headers)
	}
	var created struct {
		EndpointID string `json:"endpoint_id"`
	}
	_ = json.Unmarshal([]byte(resp.Body), &created)
	functions["endpoint"] = created.EndpointID

	resp = invoke(t, api.RouteListEndpoints, "list-endpoints.json", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, created.EndpointID) {
		t.Fatalf("list-endpoints.json: %d %s", resp.StatusCode, resp.Body)
	}

	resp = invoke(t, api.RouteStartReplay, "replay.json", setBody(map[string]any{
		"endpoint_id": created.EndpointID, "from": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339),
	}))
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(resp.Body, `"status":"started"`) {
		t.Fatalf("replay.json: %d %s", resp.StatusCode, resp.Body)
	}
	var started struct {
		ReplayID string `json:"replay_id"`
	}
	_ = json.Unmarshal([]byte(resp.Body), &started)

	resp = invoke(t, api.RouteGetReplay, "get-replay.json", func(ev map[string]any) {
		ev["rawPath"] = api.BasePath + "/replays/" + started.ReplayID
		ev["pathParameters"] = map[string]any{"replay_id": started.ReplayID}
	})
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, started.ReplayID) {
		t.Fatalf("get-replay.json: %d %s", resp.StatusCode, resp.Body)
	}
	// Unedited, the fixture names a replay that does not exist: 404 in the contract's shape.
	resp = invoke(t, api.RouteGetReplay, "get-replay.json", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(resp.Body, `"error":"not_found"`) {
		t.Fatalf("get-replay.json unedited: %d %s", resp.StatusCode, resp.Body)
	}
	atEndpoint := func(ev map[string]any) {
		ev["rawPath"] = api.BasePath + "/endpoints/" + created.EndpointID
		ev["pathParameters"] = map[string]any{"endpoint_id": created.EndpointID}
	}
	resp = invoke(t, api.RouteGetEndpoint, "get-endpoint.json", atEndpoint)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, created.EndpointID) {
		t.Fatalf("get-endpoint.json: %d %s", resp.StatusCode, resp.Body)
	}
	for _, step := range []struct{ route, fixture, status string }{
		{api.RouteDisableEndpoint, "disable-endpoint.json", `"status":"disabled"`},
		{api.RouteEnableEndpoint, "enable-endpoint.json", `"status":"active"`},
		{api.RouteTestEndpoint, "test-endpoint.json", `"event_type":"export.done"`},
	} {
		resp = invoke(t, step.route, step.fixture, func(ev map[string]any) {
			ev["rawPath"] = strings.Replace(ev["rawPath"].(string), "ep_aaaaaaaaaaaaaaaaaaaaaaaaaa", created.EndpointID, 1)
			ev["pathParameters"] = map[string]any{"endpoint_id": created.EndpointID}
			ev["headers"].(map[string]any)["x-request-id"] = "fixture-" + step.fixture + "-" + created.EndpointID
		})
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, step.status) {
			t.Fatalf("%s: %d %s", step.fixture, resp.StatusCode, resp.Body)
		}
	}
	// Unedited, the fixtures name an endpoint that does not exist.
	for route, fixture := range map[string]string{api.RouteGetEndpoint: "get-endpoint.json", api.RouteDeleteEndpoint: "delete-endpoint.json",
		api.RouteDisableEndpoint: "disable-endpoint.json", api.RouteEnableEndpoint: "enable-endpoint.json",
		api.RouteTestEndpoint: "test-endpoint.json", api.RouteResendDelivery: "resend-delivery.json"} {
		if resp := invoke(t, route, fixture, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s unedited: %d %s", fixture, resp.StatusCode, resp.Body)
		}
	}

	resp = invoke(t, api.RouteListEventTypes, "list-event-types.json", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, `"type":"export.done"`) {
		t.Fatalf("list-event-types.json: %d %s", resp.StatusCode, resp.Body)
	}

	resp = invoke(t, api.RouteDeleteEndpoint, "delete-endpoint.json", func(ev map[string]any) {
		atEndpoint(ev)
		ev["rawQueryString"] = "version=3" // created, disabled, enabled
		ev["headers"].(map[string]any)["x-request-id"] = "fixture-delete-" + created.EndpointID
	})
	if resp.StatusCode != http.StatusNoContent || resp.Body != "" {
		t.Fatalf("delete-endpoint.json: %d %q", resp.StatusCode, resp.Body)
	}

	// A function serves only its own route.
	resp = invoke(t, api.RouteGetReplay, "list-endpoints.json", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GetReplay function served another route: %d %s", resp.StatusCode, resp.Body)
	}
}

// TestPortalFixtureThroughLambdaEntryPath feeds events/portal.json through the portal
// function's entry path (the runtime's decoding, the api-proxy adapter, the portal handler):
// the page comes back as HTML with its security headers, and an asset as JavaScript.
func TestPortalFixtureThroughLambdaEntryPath(t *testing.T) {
	t.Parallel()
	h, err := portal.NewHandler(api.BasePath, "https://platform.example.com", api.RouteKeys())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "events", "portal.json"))
	if err != nil {
		t.Fatal(err)
	}
	invoke := func(path string) events.APIGatewayV2HTTPResponse {
		var ev map[string]any
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		if path != "" {
			ev["rawPath"] = path
			ev["requestContext"].(map[string]any)["http"].(map[string]any)["path"] = path
		}
		payload, _ := json.Marshal(ev)
		out, err := lambda.NewHandler(lambdaapi.Handler(h)).Invoke(context.Background(), payload)
		if err != nil {
			t.Fatal(err)
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := invoke("")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Headers["Content-Type"], "text/html") || !strings.Contains(resp.Body, `src="app.js"`) {
		t.Fatalf("portal.json: %d %v %.200s", resp.StatusCode, resp.Headers, resp.Body)
	}
	if csp := resp.Headers["Content-Security-Policy"]; !strings.Contains(csp, "frame-ancestors https://platform.example.com") || !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("CSP through API Gateway: %q", csp)
	}
	if resp.Headers["X-Content-Type-Options"] != "nosniff" || resp.Headers["Referrer-Policy"] != "no-referrer" {
		t.Fatalf("headers: %v", resp.Headers)
	}
	resp = invoke(api.BasePath + "/portal/app.js")
	if resp.StatusCode != http.StatusOK || resp.Headers["Content-Type"] != "text/javascript; charset=utf-8" || resp.IsBase64Encoded || !strings.Contains(resp.Body, "import") {
		t.Fatalf("app.js: %d %v base64=%v", resp.StatusCode, resp.Headers, resp.IsBase64Encoded)
	}
}

// TestMalformedEventsGetTheContractsError: whatever a function is invoked with, the answer
// is the contract's error body. An event that cannot become an HTTP request (a path that is
// not a URL, a body marked base64 that is not) is 400 instead of a failed invocation, and
// raw control characters in headers reach the checks that refuse them (as 400 and 401).
func TestMalformedEventsGetTheContractsError(t *testing.T) {
	t.Parallel()
	verifier, err := auth.NewVerifier(auth.Config{JWKSURL: "http://127.0.0.1:1/jwks", Issuer: "https://issuer.test/", Audience: "a"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := api.NewHandler(api.Deps{Auth: verifier, RateLimiter: refuseAll{}, Replays: &app.Replays{}}, api.RouteGetReplay)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "events", "get-replay.json"))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		edit   func(ev map[string]any)
		status int
		code   string
	}{
		"path not a URL":                {func(ev map[string]any) { ev["rawPath"] = api.BasePath + "/replays/%zz" }, 400, "invalid_request"},
		"body not base64":               {func(ev map[string]any) { ev["isBase64Encoded"] = true; ev["body"] = "!!not base64!!" }, 400, "invalid_request"},
		"control character in the path": {func(ev map[string]any) { ev["rawPath"] = api.BasePath + "/replays/rp_\x7f" }, 400, "invalid_request"},
		"NUL in the token": {func(ev map[string]any) {
			ev["headers"].(map[string]any)["authorization"] = "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln\x00"
		}, 401, "unauthorized"},
		"CR in X-Request-Id": {func(ev map[string]any) { ev["headers"].(map[string]any)["x-request-id"] = "a\rb" }, 400, "invalid_request"},
		"empty X-Request-Id": {func(ev map[string]any) { ev["headers"].(map[string]any)["x-request-id"] = "" }, 400, "invalid_request"},
		"X-Request-Id joined by API Gateway": {func(ev map[string]any) {
			ev["headers"].(map[string]any)["x-request-id"] = "first,second"
		}, 400, "invalid_request"},
		"two tokens joined by API Gateway": {func(ev map[string]any) {
			ev["headers"].(map[string]any)["authorization"] = "Bearer a.b.c,Bearer d.e.f"
		}, 401, "unauthorized"},
	} {
		t.Run(name, func(t *testing.T) {
			var ev map[string]any
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			tc.edit(ev)
			payload, _ := json.Marshal(ev)
			out, err := lambda.NewHandler(lambdaapi.Handler(h)).Invoke(context.Background(), payload)
			if err != nil {
				t.Fatalf("the invocation failed instead of answering: %v", err)
			}
			var resp events.APIGatewayV2HTTPResponse
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatal(err)
			}
			var body struct{ Error, Message, RequestID string }
			if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || resp.StatusCode != tc.status || body.Error != tc.code || body.Message == "" {
				t.Fatalf("%d %v %s; want %d %s in the contract's body", resp.StatusCode, resp.Headers, resp.Body, tc.status, tc.code)
			}
			if resp.Headers["Content-Type"] != "application/json" || resp.Headers["X-Request-Id"] == "" || resp.Headers["Cache-Control"] != "no-store" {
				t.Fatalf("headers %v", resp.Headers)
			}
		})
	}
}

// refuseAll is a rate limiter that is never reached in these tests: every request is refused
// before (or fails the test if it gets this far).
type refuseAll struct{}

func (refuseAll) Take(context.Context, string, string, int, time.Duration, time.Time) (app.RateDecision, error) {
	return app.RateDecision{}, errors.New("the rate limiter must not be reached")
}
