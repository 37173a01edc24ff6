// Package apifn wires the API functions: it builds the shared API handler (shared/api) for
// the routes a function serves, on the DynamoDB adapters and the Services its entry point
// passes. The local server and the tests build it too, with every route and every service
// (shared/wiring).
package apifn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/auth"
	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/eventtypes"
	"github.com/datajetty/webhooks/shared/handshake"
	"github.com/datajetty/webhooks/shared/metrics"
	"github.com/datajetty/webhooks/shared/sender"
	"github.com/datajetty/webhooks/shared/ssrf"
	"github.com/datajetty/webhooks/shared/store"
	"github.com/datajetty/webhooks/shared/wiring/coldstart"
)

// Requirements lists the settings each route needs, so a function with a missing variable
// fails at cold start with the variable's name rather than on its first request.
var Requirements = map[string][]config.Var{
	api.RouteRegisterEndpoint: {config.EndpointsTable, config.IdempotencyTable, config.SecretsKeyID},
	api.RouteListEndpoints:    {config.EndpointsTable, config.CursorSecretARN},
	api.RouteStartReplay:      {config.EndpointsTable, config.ReplaysTable, config.ReplayQueueURL, config.IdempotencyTable},
	api.RouteGetReplay:        {config.ReplaysTable},
	api.RouteListDeliveries:   {config.EndpointsTable, config.DeliveriesTable, config.CursorSecretARN},
	api.RouteListEventTypes:   {},
	api.RouteGetEndpoint:      {config.EndpointsTable},
	api.RouteDeleteEndpoint:   {config.EndpointsTable, config.IdempotencyTable},
	api.RouteDisableEndpoint:  {config.EndpointsTable, config.IdempotencyTable, config.IngestQueueURL},
	api.RouteEnableEndpoint:   {config.EndpointsTable, config.IdempotencyTable, config.SecretsKeyID},
	api.RouteTestEndpoint:     {config.EndpointsTable, config.DeliveriesTable, config.IdempotencyTable, config.SecretsKeyID},
	api.RouteResendDelivery:   {config.EndpointsTable, config.DeliveriesTable, config.EventsTable, config.DeliveryQueueURL, config.IdempotencyTable},
}

// Common is what every API route needs: rate limits and token verification.
var Common = []config.Var{config.RateLimitTable, config.JWKSURL, config.JWTIssuer, config.JWTAudience}

// servicesNeeded names the Services each route calls besides DynamoDB, with the package
// that provides them, so a function whose entry point forgot one fails its cold start
// saying which.
var servicesNeeded = map[string]func(coldstart.Services) error{
	api.RouteRegisterEndpoint: func(s coldstart.Services) error { return need(s.SecretBox != nil, "KMS (withkms.Services)") },
	api.RouteEnableEndpoint:   func(s coldstart.Services) error { return need(s.SecretBox != nil, "KMS (withkms.Services)") },
	api.RouteTestEndpoint:     func(s coldstart.Services) error { return need(s.SecretBox != nil, "KMS (withkms.Services)") },
	api.RouteStartReplay:      func(s coldstart.Services) error { return need(s.ReplayQueue != nil, "SQS (withsqs.Services)") },
	api.RouteResendDelivery:   func(s coldstart.Services) error { return need(s.DeliveryQueue != nil, "SQS (withsqs.Services)") },
	api.RouteDisableEndpoint:  func(s coldstart.Services) error { return need(s.ServiceEvents != nil, "SQS (withsqs.Services)") },
	api.RouteListEndpoints: func(s coldstart.Services) error {
		return need(s.ReadSecret != nil, "Secrets Manager (withsecrets.Services)")
	},
	api.RouteListDeliveries: func(s coldstart.Services) error {
		return need(s.ReadSecret != nil, "Secrets Manager (withsecrets.Services)")
	},
}

func need(ok bool, what string) error {
	if ok {
		return nil
	}
	return errors.New("needs " + what)
}

// JWKSWait bounds how long a cold start waits for the issuer's signing keys. A healthy
// issuer answers in well under a second; past the bound the cold start goes on and the
// first request joins the fetch still running, rather than the function failing to start
// because the issuer is slow.
const JWKSWait = 2 * time.Second

// Options tunes the handler for tests and the local server.
type Options struct {
	Logger  *slog.Logger
	Metrics *metrics.Emitter
	Now     func() time.Time
	Limits  api.Limits
	// HandshakeClient sends the challenge handshakes; nil: the SSRF-guarded client. (make
	// schemathesis passes one that dials loopback addresses only, so generated URLs never
	// reach another host.)
	HandshakeClient *http.Client
}

// Route is the Lambda function serving one route: its cold start builds the handler for
// that route alone, with the services its entry point passes.
func Route(name string, services ...coldstart.Services) coldstart.Function[http.Handler] {
	svc := coldstart.Merge(services...)
	return coldstart.Function[http.Handler]{Name: name, NameKey: "route", Build: func(ctx context.Context, b coldstart.Boot) (http.Handler, error) {
		return API(ctx, b.Config, b.AWS, Options{Logger: b.Logger, Metrics: metrics.New(os.Stdout, "api")}, svc, name)
	}}
}

// API builds the API handler serving the named routes (every route when none are named).
//
// Its network calls go out first and together, while the rest is built: the fetch of the
// issuer's signing keys (so the first request does not wait for the issuer; bounded by
// JWKSWait, a failure is logged and left to the first request) and, for the list routes,
// the read of the cursor-signing key (required: a failure fails the cold start).
func API(ctx context.Context, cfg config.Config, awsCfg aws.Config, opts Options, svc coldstart.Services, routes ...string) (*api.Handler, error) {
	names := routes
	if len(names) == 0 {
		for _, rt := range api.Routes() {
			names = append(names, rt.Name)
		}
	}
	need := slices.Clone(Common)
	var missing []error
	for _, n := range names {
		need = append(need, Requirements[n]...)
		if check := servicesNeeded[n]; check != nil {
			if err := check(svc); err != nil {
				missing = append(missing, fmt.Errorf("route %s %w", n, err))
			}
		}
	}
	if err := errors.Join(missing...); err != nil {
		return nil, err
	}
	if err := cfg.Require(need...); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	verifier, err := auth.NewVerifier(auth.Config{
		JWKSURL: cfg.JWKSURL, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, TenantClaim: cfg.TenantClaim,
		HTTPClient: &http.Client{Timeout: 5 * time.Second},
	})
	if err != nil {
		return nil, fmt.Errorf("token verifier: %w", err)
	}
	keys := make(chan error, 1)
	go func() {
		wait, cancel := context.WithTimeout(ctx, JWKSWait)
		defer cancel()
		keys <- verifier.Prefetch(wait)
	}()
	var cursor chan cursorKey
	if cfg.CursorSecretARN != "" && svc.ReadSecret != nil && (slices.Contains(names, api.RouteListEndpoints) || slices.Contains(names, api.RouteListDeliveries)) {
		cursor = make(chan cursorKey, 1)
		go func() { cursor <- readCursorKey(ctx, svc, awsCfg, cfg.CursorSecretARN) }()
	}

	ddb := dynamodb.NewFromConfig(awsCfg)
	d := api.Deps{
		Auth:        verifier,
		RateLimiter: store.NewRateLimits(ddb, cfg.RateLimitTable),
		Limits:      opts.Limits,
		Logger:      opts.Logger,
		Metrics:     opts.Metrics,
		Now:         opts.Now,
	}
	// The catalog is parsed at the cold start of the routes that read it (~0.2 ms), and
	// only theirs.
	if slices.Contains(names, api.RouteListEventTypes) || slices.Contains(names, api.RouteRegisterEndpoint) {
		d.EventTypes = eventtypes.Builtin()
	}
	if cfg.IdempotencyTable != "" {
		d.Idempotency = store.NewIdempotency(ddb, cfg.IdempotencyTable)
	}
	if cfg.EndpointsTable != "" {
		policy := ssrf.Policy{AllowPrivate: cfg.AllowPrivateTargets}
		client := opts.HandshakeClient
		if client == nil {
			client = ssrf.NewClient(policy, 10*time.Second)
		}
		d.Endpoints = &app.Endpoints{
			Store: store.NewEndpoints(ddb, cfg.EndpointsTable),
			Challenger: &handshake.Challenger{
				Client:    client,
				Timeout:   5 * time.Second,
				UserAgent: domain.UserAgent,
			},
			URLPolicy:  domain.URLPolicy{AllowPrivate: cfg.AllowPrivateTargets, Destinations: policy},
			EventTypes: d.EventTypes,
			Now:        opts.Now,
		}
		if cfg.SecretsKeyID != "" && svc.SecretBox != nil {
			d.Endpoints.Secrets = svc.SecretBox(awsCfg, cfg.SecretsKeyID)
		}
		if cfg.IngestQueueURL != "" && svc.ServiceEvents != nil {
			d.Endpoints.Notifier = svc.ServiceEvents(awsCfg, cfg.IngestQueueURL)
			d.Endpoints.Logger = opts.Logger
		}
	}
	if cfg.ReplaysTable != "" {
		d.Replays = &app.Replays{Store: store.NewReplays(ddb, cfg.ReplaysTable, cfg.EndpointsTable), Now: opts.Now}
		if cfg.EndpointsTable != "" {
			d.Replays.Endpoints = store.NewEndpoints(ddb, cfg.EndpointsTable)
		}
		if cfg.ReplayQueueURL != "" && svc.ReplayQueue != nil {
			d.Replays.Queue = svc.ReplayQueue(awsCfg, cfg.ReplayQueueURL)
		}
	}
	if cfg.DeliveriesTable != "" && cfg.EndpointsTable != "" {
		d.Deliveries = &app.Deliveries{
			Endpoints: store.NewEndpoints(ddb, cfg.EndpointsTable),
			Log:       store.NewDeliveries(ddb, cfg.DeliveriesTable),
		}
		if d.Endpoints != nil && d.Endpoints.Secrets != nil {
			// A test is sent like a delivery: the deliver function's limits, signer and
			// SSRF-guarded client.
			d.Tests = &app.Tests{
				Store:   d.Endpoints.Store,
				Secrets: d.Endpoints.Secrets,
				Sender: sender.Sender{
					Client:           ssrf.NewClient(ssrf.Policy{AllowPrivate: cfg.AllowPrivateTargets}, sender.DefaultTimeout),
					UserAgent:        domain.UserAgent,
					Timeout:          sender.DefaultTimeout,
					MaxResponseBytes: sender.DefaultMaxResponseBytes,
				},
				Log: store.NewDeliveries(ddb, cfg.DeliveriesTable),
				Now: opts.Now,
			}
		}
	}
	if cfg.EndpointsTable != "" && cfg.DeliveriesTable != "" && cfg.EventsTable != "" && cfg.DeliveryQueueURL != "" && svc.DeliveryQueue != nil {
		d.Resends = &app.Resends{
			Endpoints: store.NewEndpoints(ddb, cfg.EndpointsTable),
			Index:     store.NewDeliveries(ddb, cfg.DeliveriesTable),
			Events:    store.NewEvents(ddb, cfg.EventsTable),
			Jobs:      svc.DeliveryQueue(awsCfg, cfg.DeliveryQueueURL),
			Now:       opts.Now,
		}
	}
	if cursor != nil {
		k := <-cursor
		if k.err != nil {
			return nil, k.err
		}
		d.CursorKey = k.key
	}
	if err := <-keys; err != nil {
		opts.Logger.WarnContext(ctx, "JWKS not fetched at cold start; the first request fetches it", "jwks_url", cfg.JWKSURL, "error", err)
	}
	return api.NewHandler(d, routes...)
}

type cursorKey struct {
	key []byte
	err error
}

// readCursorKey reads the pagination-cursor signing key once per cold start.
func readCursorKey(ctx context.Context, svc coldstart.Services, awsCfg aws.Config, arn string) cursorKey {
	s, err := svc.ReadSecret(ctx, awsCfg, arn)
	if err != nil {
		return cursorKey{err: fmt.Errorf("cursor signing secret: %w", err)}
	}
	if len(s) < 16 {
		return cursorKey{err: fmt.Errorf("cursor signing secret %s is shorter than 16 characters", arn)}
	}
	return cursorKey{key: []byte(s)}
}
