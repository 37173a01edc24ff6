package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/auth"
	"github.com/datajetty/webhooks/shared/dev/devissuer"
	"github.com/datajetty/webhooks/shared/domain"
)

// In-memory ports for the benchmarks only: they measure the request pipeline (auth with a
// cached key, routing, rate-limit bookkeeping, validation, rendering, logging) without
// AWS latency, which docs/performance.md counts separately as calls per request.

type memLimiter struct{}

func (memLimiter) Take(_ context.Context, _, _ string, _ int, window time.Duration, now time.Time) (app.RateDecision, error) {
	return app.RateDecision{Allowed: true, Count: 1, Reset: now.Add(window)}, nil
}

type memEndpoints struct {
	mu    sync.Mutex
	items []domain.Endpoint
}

func (m *memEndpoints) GetEndpoint(context.Context, string, string) (domain.Endpoint, error) {
	return domain.Endpoint{}, domain.NotFound("not found")
}
func (m *memEndpoints) FindEndpointByURL(context.Context, string, string) (domain.Endpoint, error) {
	return domain.Endpoint{}, domain.NotFound("not found")
}
func (m *memEndpoints) CreateEndpoint(context.Context, domain.Endpoint) error { return nil }
func (m *memEndpoints) UpdateEndpoint(context.Context, domain.Endpoint, int64, string) error {
	return nil
}
func (m *memEndpoints) DeleteEndpoint(context.Context, domain.Endpoint, int64) error { return nil }
func (m *memEndpoints) Disable(context.Context, string, string, domain.DisabledReason, string, time.Time) (domain.Endpoint, bool, error) {
	return domain.Endpoint{}, false, domain.NotFound("not found")
}
func (m *memEndpoints) ListEndpoints(_ context.Context, _ string, limit int, _ string) ([]domain.Endpoint, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := min(limit, len(m.items))
	return m.items[:n], n < len(m.items), nil
}

// benchSetup builds the real handler (real JWT verifier against a JWKS server, keys cached
// after the first request) over in-memory stores holding 20 endpoints.
func benchSetup(b *testing.B) (http.Handler, *auth.Verifier, string, []domain.Endpoint) {
	b.Helper()
	iss, err := devissuer.New("https://issuer.bench/", "bench")
	if err != nil {
		b.Fatal(err)
	}
	jwks := httptest.NewServer(iss.JWKSHandler())
	b.Cleanup(jwks.Close)
	v, err := auth.NewVerifier(auth.Config{JWKSURL: jwks.URL, Issuer: "https://issuer.bench/", Audience: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := iss.Mint("acme", []string{api.ScopeRead, api.ScopeWrite}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	store := &memEndpoints{}
	for i := range 20 {
		store.items = append(store.items, domain.Endpoint{TenantID: "acme", ID: domain.NewID(domain.EndpointIDPrefix),
			URL: "https://hooks.example.com/" + strings.Repeat("x", i), Events: []string{"export.*"}, Status: domain.StatusActive,
			Version: 3, CreatedAt: now, UpdatedAt: now})
	}
	h, err := api.NewHandler(api.Deps{
		Auth:        v,
		RateLimiter: memLimiter{},
		Endpoints:   &app.Endpoints{Store: store, URLPolicy: domain.URLPolicy{}, Now: time.Now},
		CursorKey:   []byte("0123456789abcdef0123456789abcdef"),
		Logger:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}, api.RouteListEndpoints, api.RouteRegisterEndpoint)
	if err != nil {
		b.Fatal(err)
	}
	return h, v, tok, store.items
}

// BenchmarkRequestPipeline measures whole requests through the shared handler, each
// alternated in the same loop with a baseline that does only the unavoidable work for the
// same answer: verify the same token and encode the same items as JSON. Read:
//
//	pipeline-ns/req  time per request through the handler
//	baseline-ns/req  time per baseline request
//	ratio            baseline / pipeline (1.0 = the pipeline adds nothing)
func BenchmarkRequestPipeline(b *testing.B) {
	h, v, tok, items := benchSetup(b)
	cases := []struct {
		name   string
		req    func() *http.Request
		status int
	}{
		{"GET_endpoints", func() *http.Request {
			r := httptest.NewRequest("GET", api.BasePath+"/endpoints?limit=10", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			return r
		}, http.StatusOK},
		{"POST_endpoints_invalid", func() *http.Request {
			r := httptest.NewRequest("POST", api.BasePath+"/endpoints", strings.NewReader(`{"url":"http://example.com/h","events":["export.done"]}`))
			r.Header.Set("Authorization", "Bearer "+tok)
			r.Header.Set("Content-Type", "application/json")
			return r
		}, http.StatusBadRequest},
		{"unknown_route", func() *http.Request {
			r := httptest.NewRequest("GET", api.BasePath+"/nope", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			return r
		}, http.StatusNotFound},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			// Warm the key cache, as a live instance has it.
			if rec := serve(h, tc.req()); rec.Code != tc.status {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			var pipeline, baseline time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				rec := serve(h, tc.req())
				t1 := time.Now()
				baselineRequest(b, v, tok, items[:10])
				t2 := time.Now()
				pipeline += t1.Sub(t0)
				baseline += t2.Sub(t1)
				if rec.Code != tc.status {
					b.Fatalf("status %d", rec.Code)
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(pipeline.Nanoseconds())/n, "pipeline-ns/req")
			b.ReportMetric(float64(baseline.Nanoseconds())/n, "baseline-ns/req")
			b.ReportMetric(float64(baseline)/float64(pipeline), "ratio")
		})
	}
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func baselineRequest(b *testing.B, v *auth.Verifier, tok string, items []domain.Endpoint) {
	if _, err := v.Verify(context.Background(), "Bearer "+tok); err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := json.NewEncoder(rec).Encode(map[string]any{"items": items}); err != nil {
		b.Fatal(err)
	}
}
