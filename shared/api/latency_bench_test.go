package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/auth"
	"github.com/datajetty/webhooks/shared/dev/devissuer"
	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/store"
)

// BenchmarkReadLatency serves the GET routes through the handler with the real DynamoDB
// adapters against the emulator, and in the same loop through a handler over the same
// adapters whose calls of a request are made one at a time (a call waits for the previous
// one to finish): how a GET was served before its rate-limit write and its reads went out
// together (and ListDeliveries' endpoint read and log query). Alternating the two in one
// loop exposes both to the same machine noise. Read:
//
//	before-ms/req  latency of a request whose DynamoDB calls follow one another
//	after-ms/req   latency of a request through the handler as it is
//	after/before   the ratio (1 round trip of 2 = 0.5; of 3 = 0.33)
//
// Two settings: the emulator on loopback as it is (it serializes DynamoDB requests, so
// only the client-side and transport time of concurrent calls overlaps), and the emulator
// with 5 ms of network round trip added to every call (testenv.WithLatency), about what a
// call from Lambda to DynamoDB in the same region takes.
func BenchmarkReadLatency(b *testing.B) {
	for _, rtt := range []time.Duration{0, 5 * time.Millisecond} {
		name := "aws=emulator"
		if rtt > 0 {
			name = fmt.Sprintf("aws=emulator+%s", rtt)
		}
		b.Run(name, func(b *testing.B) { benchmarkReadLatency(b, rtt) })
	}
}

func benchmarkReadLatency(b *testing.B, rtt time.Duration) {
	ctx := context.Background()
	stack := testenv.Stack(b, nil)
	db := dynamodb.NewFromConfig(testenv.WithLatency(testenv.AWSConfig(b), rtt))
	env := stack.Env
	endpoints := store.NewEndpoints(db, env["WEBHOOKS_ENDPOINTS_TABLE"])
	replays := store.NewReplays(db, env["WEBHOOKS_REPLAYS_TABLE"], env["WEBHOOKS_ENDPOINTS_TABLE"])
	log := store.NewDeliveries(db, env["WEBHOOKS_DELIVERIES_TABLE"])
	limiter := store.NewRateLimits(db, env["WEBHOOKS_RATE_LIMIT_TABLE"])

	// One tenant with 10 endpoints, a replay and 10 delivery attempts.
	const tenant = "acme"
	now := time.Now().UTC()
	var ep domain.Endpoint
	for i := range 10 {
		ep = domain.Endpoint{TenantID: tenant, ID: domain.NewID(domain.EndpointIDPrefix), URL: fmt.Sprintf("https://hooks.example.com/%d", i),
			Events: []string{"export.*"}, Status: domain.StatusActive, Version: 1, CreatedAt: now, UpdatedAt: now, SecretCiphertext: []byte("ct")}
		if err := endpoints.CreateEndpoint(ctx, ep); err != nil {
			b.Fatal(err)
		}
	}
	r := domain.Replay{TenantID: tenant, ID: domain.NewID(domain.ReplayIDPrefix), EndpointID: ep.ID, From: now.Add(-time.Hour), Until: now,
		Status: domain.ReplayStarted, CreatedAt: now, UpdatedAt: now}
	if err := replays.StartReplay(ctx, r, now.Add(domain.ReplayLease), now); err != nil {
		b.Fatal(err)
	}
	var attempts []domain.Attempt
	for i := range 10 {
		attempts = append(attempts, domain.Attempt{TenantID: tenant, EndpointID: ep.ID, EventID: fmt.Sprintf("evt_%d", i), EventType: "export.done",
			OccurredAt: now, Number: 1, Status: domain.DeliverySucceeded, HTTPStatus: 204, AttemptedAt: now.Add(time.Duration(i) * time.Second)})
	}
	if err := log.Record(ctx, attempts); err != nil {
		b.Fatal(err)
	}

	iss, err := devissuer.New("https://issuer.bench/", "bench")
	if err != nil {
		b.Fatal(err)
	}
	jwks := httptest.NewServer(iss.JWKSHandler())
	b.Cleanup(jwks.Close)
	verifier, err := auth.NewVerifier(auth.Config{JWKSURL: jwks.URL, Issuer: "https://issuer.bench/", Audience: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	token, err := iss.Mint(tenant, []string{api.ScopeRead}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	handler := func(one *oneAtATime) http.Handler {
		var (
			lim  app.RateLimiter   = limiter
			eps  app.EndpointStore = endpoints
			reps app.ReplayStore   = replays
			logs app.AttemptLog    = log
		)
		if one != nil {
			lim, eps, reps, logs = oneLimiter{limiter, one}, oneEndpoints{endpoints, one}, oneReplays{replays, one}, oneLog{log, one}
		}
		h, err := api.NewHandler(api.Deps{
			Auth: verifier, RateLimiter: lim,
			Endpoints:  &app.Endpoints{Store: eps},
			Replays:    &app.Replays{Store: reps},
			Deliveries: &app.Deliveries{Endpoints: eps, Log: logs},
			CursorKey:  []byte("bench-cursor-key-0123456789"),
			// The largest limit a rate-limit log holds; the emulator answers far fewer than
			// 1000 requests a second, so the benchmark is never refused.
			Limits: api.Limits{Default: api.Rule{Limit: 1000, Window: time.Second}, Replay: api.Rule{Limit: 1, Window: time.Minute}},
			Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		}, api.RouteListEndpoints, api.RouteGetReplay, api.RouteListDeliveries)
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	before, after := handler(&oneAtATime{}), handler(nil)

	for _, route := range []struct{ name, path string }{
		{api.RouteListEndpoints, "/endpoints"},
		{api.RouteGetReplay, "/replays/" + r.ID},
		{api.RouteListDeliveries, "/endpoints/" + ep.ID + "/deliveries"},
	} {
		b.Run("route="+route.name, func(b *testing.B) {
			serve := func(h http.Handler) time.Duration {
				req := httptest.NewRequest(http.MethodGet, api.BasePath+route.path, nil)
				req.Header.Set("Authorization", "Bearer "+token)
				rec := httptest.NewRecorder()
				start := time.Now()
				h.ServeHTTP(rec, req)
				d := time.Since(start)
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", route.path, rec.Code, rec.Body)
				}
				return d
			}
			serve(before) // the verifier's keys, the SDK's connections
			serve(after)
			var beforeTime, afterTime time.Duration
			n := 0
			for b.Loop() {
				beforeTime += serve(before)
				afterTime += serve(after)
				n++
			}
			b.ReportMetric(float64(beforeTime.Microseconds())/1000/float64(n), "before-ms/req")
			b.ReportMetric(float64(afterTime.Microseconds())/1000/float64(n), "after-ms/req")
			b.ReportMetric(float64(afterTime)/float64(beforeTime), "after/before")
		})
	}
}

// oneAtATime makes the DynamoDB calls of the adapters wrapped with it one after another.
type oneAtATime struct{ mu sync.Mutex }

type oneLimiter struct {
	app.RateLimiter
	one *oneAtATime
}

func (l oneLimiter) Take(ctx context.Context, tenantID, rule string, limit int, window time.Duration, now time.Time) (app.RateDecision, error) {
	l.one.mu.Lock()
	defer l.one.mu.Unlock()
	return l.RateLimiter.Take(ctx, tenantID, rule, limit, window, now)
}

type oneEndpoints struct {
	app.EndpointStore
	one *oneAtATime
}

func (s oneEndpoints) GetEndpoint(ctx context.Context, tenantID, endpointID string) (domain.Endpoint, error) {
	s.one.mu.Lock()
	defer s.one.mu.Unlock()
	return s.EndpointStore.GetEndpoint(ctx, tenantID, endpointID)
}

func (s oneEndpoints) ListEndpoints(ctx context.Context, tenantID string, limit int, afterID string) ([]domain.Endpoint, bool, error) {
	s.one.mu.Lock()
	defer s.one.mu.Unlock()
	return s.EndpointStore.ListEndpoints(ctx, tenantID, limit, afterID)
}

type oneReplays struct {
	app.ReplayStore
	one *oneAtATime
}

func (s oneReplays) GetReplay(ctx context.Context, tenantID, replayID string) (domain.Replay, error) {
	s.one.mu.Lock()
	defer s.one.mu.Unlock()
	return s.ReplayStore.GetReplay(ctx, tenantID, replayID)
}

type oneLog struct {
	app.AttemptLog
	one *oneAtATime
}

func (l oneLog) List(ctx context.Context, tenantID, endpointID string, status domain.DeliveryStatus, limit int, after string) ([]domain.Attempt, string, error) {
	l.one.mu.Lock()
	defer l.one.mu.Unlock()
	return l.AttemptLog.List(ctx, tenantID, endpointID, status, limit, after)
}
