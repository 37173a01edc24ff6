package apifn

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/dev/devissuer"
	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/wiring/coldstart"
)

const (
	issuer   = "https://issuer.test/"
	audience = "webhooks-test"
)

// jwks serves a development issuer's keys, counting the fetches; before answering, each
// fetch runs first (when set).
type jwks struct {
	*httptest.Server
	iss   *devissuer.Issuer
	hits  atomic.Int64
	first func()
}

func newJWKS(t *testing.T) *jwks {
	t.Helper()
	iss, err := devissuer.New(issuer, audience)
	if err != nil {
		t.Fatal(err)
	}
	j := &jwks{iss: iss}
	keys := iss.JWKSHandler()
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.hits.Add(1)
		if j.first != nil {
			j.first()
		}
		keys.ServeHTTP(w, r)
	}))
	t.Cleanup(j.Close)
	return j
}

func configFor(t *testing.T, jwksURL string, extra map[string]string) config.Config {
	t.Helper()
	env := map[string]string{
		"WEBHOOKS_RATE_LIMIT_TABLE": "limits", "WEBHOOKS_REPLAYS_TABLE": "replays", "WEBHOOKS_ENDPOINTS_TABLE": "endpoints",
		"WEBHOOKS_CURSOR_SECRET_ARN": "arn:cursor", "WEBHOOKS_JWKS_URL": jwksURL, "WEBHOOKS_JWT_ISSUER": issuer, "WEBHOOKS_JWT_AUDIENCE": audience,
	}
	for k, v := range extra {
		env[k] = v
	}
	cfg, err := config.FromMap(env)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestColdStartFetchesTheSigningKeys: the cold start fetches the JWKS, so the first request
// makes no call to the issuer that a warm one would not.
func TestColdStartFetchesTheSigningKeys(t *testing.T) {
	t.Parallel()
	j := newJWKS(t)
	down, _ := testenv.DownAWSConfig(t)
	h, err := API(context.Background(), configFor(t, j.URL, nil), down, Options{Logger: slog.New(slog.DiscardHandler)}, coldstart.Services{}, api.RouteGetReplay)
	if err != nil {
		t.Fatal(err)
	}
	if n := j.hits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times by the cold start, want 1", n)
	}
	token, err := j.iss.Mint("acme", []string{api.ScopeRead}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		req := httptest.NewRequest(http.MethodGet, api.BasePath+"/replays/rp_x", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		// DynamoDB is down: the token was accepted, then the rate limit failed.
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("request: %d %s", rec.Code, rec.Body)
		}
	}
	if n := j.hits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times after two requests, want still 1", n)
	}
}

// TestColdStartWithoutTheIssuer: an issuer that cannot be reached does not stop the cold
// start; it says so in a clear log line, and the first request fetches the keys itself.
func TestColdStartWithoutTheIssuer(t *testing.T) {
	t.Parallel()
	j := newJWKS(t)
	var up atomic.Bool
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "issuer down", http.StatusServiceUnavailable)
			return
		}
		j.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	var logs bytes.Buffer
	down, _ := testenv.DownAWSConfig(t)
	h, err := API(context.Background(), configFor(t, proxy.URL, nil), down, Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}, coldstart.Services{}, api.RouteGetReplay)
	if err != nil {
		t.Fatalf("the cold start failed for the issuer: %v", err)
	}
	if !strings.Contains(logs.String(), `"msg":"JWKS not fetched at cold start; the first request fetches it"`) ||
		!strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), proxy.URL) {
		t.Errorf("log:\n%s", logs.String())
	}
	up.Store(true)
	token, _ := j.iss.Mint("acme", []string{api.ScopeRead}, time.Hour)
	req := httptest.NewRequest(http.MethodGet, api.BasePath+"/replays/rp_x", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || j.hits.Load() != 1 {
		t.Errorf("first request: %d %s, JWKS fetches %d; want the keys fetched then DynamoDB's 503", rec.Code, rec.Body, j.hits.Load())
	}
}

// TestColdStartCallsGoOutTogether: the list routes' cursor key is read while the JWKS is
// fetched: each waits until the other has started (a cold start making them one after the
// other would leave the first waiting until it gives up, and fail).
func TestColdStartCallsGoOutTogether(t *testing.T) {
	t.Parallel()
	j := newJWKS(t)
	fetching, reading := make(chan struct{}), make(chan struct{})
	meet := func(mine, theirs chan struct{}) error {
		close(mine)
		select {
		case <-theirs:
			return nil
		case <-time.After(JWKSWait + 3*time.Second):
			return errors.New("not concurrent")
		}
	}
	var keysErr atomic.Value
	j.first = func() {
		if err := meet(fetching, reading); err != nil {
			keysErr.Store(err)
		}
	}
	svc := coldstart.Services{ReadSecret: func(ctx context.Context, _ aws.Config, arn string) (string, error) {
		if err := meet(reading, fetching); err != nil {
			return "", err
		}
		return "a-cursor-key-of-32-characters-ok", nil
	}}
	down, _ := testenv.DownAWSConfig(t)
	if _, err := API(context.Background(), configFor(t, j.URL, nil), down, Options{Logger: slog.New(slog.DiscardHandler)}, svc, api.RouteListEndpoints); err != nil {
		t.Fatal(err)
	}
	if err := keysErr.Load(); err != nil {
		t.Fatalf("JWKS fetch: %v", err)
	}
}

func TestColdStartNamesAMissingService(t *testing.T) {
	t.Parallel()
	j := newJWKS(t)
	down, _ := testenv.DownAWSConfig(t)
	cfg := configFor(t, j.URL, map[string]string{"WEBHOOKS_IDEMPOTENCY_TABLE": "idem", "WEBHOOKS_SECRETS_KEY_ID": "key", "WEBHOOKS_REPLAY_QUEUE_URL": "http://q"})
	for route, want := range map[string]string{
		api.RouteRegisterEndpoint: "withkms.Services",
		api.RouteStartReplay:      "withsqs.Services",
		api.RouteListEndpoints:    "withsecrets.Services",
		api.RouteListDeliveries:   "withsecrets.Services",
	} {
		_, err := API(context.Background(), cfg, down, Options{}, coldstart.Services{}, route)
		if err == nil || !strings.Contains(err.Error(), route) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s without its service: %v, want an error naming %s", route, err, want)
		}
	}
}
