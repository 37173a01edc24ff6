// Package wiring builds the functions' dependencies once, at cold start, from the typed
// configuration: AWS clients, adapters, services and the API handler. The Lambda entry
// points, the local server and the end-to-end tests all build through here, so they run
// the same code.
package wiring

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/auth"
	"github.com/datajetty/webhooks/shared/awserr"
	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/eventtypes"
	"github.com/datajetty/webhooks/shared/handshake"
	"github.com/datajetty/webhooks/shared/kmssecrets"
	"github.com/datajetty/webhooks/shared/metrics"
	"github.com/datajetty/webhooks/shared/queue"
	"github.com/datajetty/webhooks/shared/ssrf"
	"github.com/datajetty/webhooks/shared/store"
)

// UserAgent identifies the service's outgoing requests to tenants' endpoints.
const UserAgent = "DataJetty-Webhooks/1.0 (+https://datajetty.com/docs/webhooks)"

// LoadAWS loads the SDK configuration. AWS_ENDPOINT_URL (the SDK's own variable) points
// every client at the local emulator.
func LoadAWS(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRetryMaxAttempts(3))
	if err != nil {
		return cfg, fmt.Errorf("load AWS config: %w", err)
	}
	return cfg, nil
}

// requirements lists the settings each route needs, so a function with a missing variable
// fails at cold start with the variable's name rather than on its first request.
var requirements = map[string][]config.Var{
	api.RouteRegisterEndpoint: {config.EndpointsTable, config.IdempotencyTable, config.SecretsKeyID},
	api.RouteListEndpoints:    {config.EndpointsTable, config.CursorSecretARN},
	api.RouteStartReplay:      {config.EndpointsTable, config.ReplaysTable, config.ReplayQueueURL, config.IdempotencyTable},
	api.RouteGetReplay:        {config.ReplaysTable},
	api.RouteListDeliveries:   {config.EndpointsTable, config.DeliveriesTable, config.CursorSecretARN},
	api.RouteListEventTypes:   {},
	api.RouteGetEndpoint:      {config.EndpointsTable},
	api.RouteDeleteEndpoint:   {config.EndpointsTable, config.IdempotencyTable},
}

// apiCommon is what every API route needs: rate limits and token verification.
var apiCommon = []config.Var{config.RateLimitTable, config.JWKSURL, config.JWTIssuer, config.JWTAudience}

// APIOptions tunes the handler for tests and the local server.
type APIOptions struct {
	Logger  *slog.Logger
	Metrics *metrics.Emitter
	Now     func() time.Time
	Limits  api.Limits
}

// API builds the API handler serving the named routes (every route when none are named).
func API(ctx context.Context, cfg config.Config, awsCfg aws.Config, opts APIOptions, routes ...string) (*api.Handler, error) {
	names := routes
	if len(names) == 0 {
		for _, rt := range api.Routes() {
			names = append(names, rt.Name)
		}
	}
	need := append([]config.Var{}, apiCommon...)
	for _, n := range names {
		need = append(need, requirements[n]...)
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
	ddb := dynamodb.NewFromConfig(awsCfg)
	d := api.Deps{
		Auth:        verifier,
		EventTypes:  eventtypes.Builtin(),
		RateLimiter: store.NewRateLimits(ddb, cfg.RateLimitTable),
		Limits:      opts.Limits,
		Logger:      opts.Logger,
		Metrics:     opts.Metrics,
		Now:         opts.Now,
	}
	if cfg.IdempotencyTable != "" {
		d.Idempotency = store.NewIdempotency(ddb, cfg.IdempotencyTable)
	}
	if cfg.EndpointsTable != "" {
		policy := ssrf.Policy{AllowPrivate: cfg.AllowPrivateTargets}
		d.Endpoints = &app.Endpoints{
			Store: store.NewEndpoints(ddb, cfg.EndpointsTable),
			Challenger: &handshake.Challenger{
				Client:    ssrf.NewClient(policy, 10*time.Second),
				Timeout:   5 * time.Second,
				UserAgent: UserAgent,
			},
			URLPolicy: domain.URLPolicy{AllowPrivate: cfg.AllowPrivateTargets},
			Now:       opts.Now,
		}
		if cfg.SecretsKeyID != "" {
			d.Endpoints.Secrets = kmssecrets.New(kms.NewFromConfig(awsCfg), cfg.SecretsKeyID)
		}
	}
	if cfg.ReplaysTable != "" && cfg.ReplayQueueURL != "" {
		d.Replays = &app.Replays{
			Store: store.NewReplays(ddb, cfg.ReplaysTable, cfg.EndpointsTable),
			Queue: queue.NewReplayJobs(sqs.NewFromConfig(awsCfg), cfg.ReplayQueueURL),
			Now:   opts.Now,
		}
	} else if cfg.ReplaysTable != "" {
		d.Replays = &app.Replays{Store: store.NewReplays(ddb, cfg.ReplaysTable, cfg.EndpointsTable), Now: opts.Now}
	}
	if cfg.DeliveriesTable != "" && cfg.EndpointsTable != "" {
		d.Deliveries = &app.Deliveries{
			Endpoints: store.NewEndpoints(ddb, cfg.EndpointsTable),
			Log:       store.NewDeliveries(ddb, cfg.DeliveriesTable),
		}
	}
	if cfg.CursorSecretARN != "" && (contains(names, api.RouteListEndpoints) || contains(names, api.RouteListDeliveries)) {
		key, err := cursorKey(ctx, secretsmanager.NewFromConfig(awsCfg), cfg.CursorSecretARN)
		if err != nil {
			return nil, err
		}
		d.CursorKey = key
	}
	return api.NewHandler(d, routes...)
}

// cursorKey reads the pagination-cursor signing key once per cold start.
func cursorKey(ctx context.Context, sm *secretsmanager.Client, arn string) ([]byte, error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("read cursor signing secret: %w", awserr.Classify("secrets", err))
	}
	if out.SecretString == nil || len(*out.SecretString) < 16 {
		return nil, fmt.Errorf("cursor signing secret %s is shorter than 16 characters", arn)
	}
	return []byte(*out.SecretString), nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
