// Package config reads the functions' configuration from the environment once, at cold
// start, into a typed and validated struct. The variable names are a stable interface
// (README "Configuration").
package config

import (
	"fmt"
	"os"
	"strings"
)

// Config is every setting a function or the local server may need. Which fields are
// required depends on the function; see the Require* methods.
type Config struct {
	EndpointsTable   string // WEBHOOKS_ENDPOINTS_TABLE
	IdempotencyTable string // WEBHOOKS_IDEMPOTENCY_TABLE
	RateLimitTable   string // WEBHOOKS_RATE_LIMIT_TABLE
	ReplaysTable     string // WEBHOOKS_REPLAYS_TABLE
	ReplayQueueURL   string // WEBHOOKS_REPLAY_QUEUE_URL
	SecretsKeyID     string // WEBHOOKS_SECRETS_KEY_ID
	CursorSecretARN  string // WEBHOOKS_CURSOR_SECRET_ARN
	EventsTable      string // WEBHOOKS_EVENTS_TABLE
	DeliveriesTable  string // WEBHOOKS_DELIVERIES_TABLE
	IngestDLQURL     string // WEBHOOKS_INGEST_DLQ_URL
	DeliveryQueueURL string // WEBHOOKS_DELIVERY_QUEUE_URL

	JWKSURL     string // WEBHOOKS_JWKS_URL
	JWTIssuer   string // WEBHOOKS_JWT_ISSUER
	JWTAudience string // WEBHOOKS_JWT_AUDIENCE
	TenantClaim string // WEBHOOKS_TENANT_CLAIM (default tenant_id)

	// AllowPrivateTargets permits http and private destinations: local development and
	// tests only, never set in template.yaml.
	AllowPrivateTargets bool // WEBHOOKS_ALLOW_PRIVATE_TARGETS
}

// FromEnv reads the configuration from the process environment.
func FromEnv() (Config, error) { return FromMap(envMap()) }

// FromMap reads the configuration from a map of variables (tests and the local server).
func FromMap(env map[string]string) (Config, error) {
	c := Config{
		EndpointsTable:   env["WEBHOOKS_ENDPOINTS_TABLE"],
		IdempotencyTable: env["WEBHOOKS_IDEMPOTENCY_TABLE"],
		RateLimitTable:   env["WEBHOOKS_RATE_LIMIT_TABLE"],
		ReplaysTable:     env["WEBHOOKS_REPLAYS_TABLE"],
		ReplayQueueURL:   env["WEBHOOKS_REPLAY_QUEUE_URL"],
		SecretsKeyID:     env["WEBHOOKS_SECRETS_KEY_ID"],
		CursorSecretARN:  env["WEBHOOKS_CURSOR_SECRET_ARN"],
		EventsTable:      env["WEBHOOKS_EVENTS_TABLE"],
		DeliveriesTable:  env["WEBHOOKS_DELIVERIES_TABLE"],
		IngestDLQURL:     env["WEBHOOKS_INGEST_DLQ_URL"],
		DeliveryQueueURL: env["WEBHOOKS_DELIVERY_QUEUE_URL"],
		JWKSURL:          env["WEBHOOKS_JWKS_URL"],
		JWTIssuer:        env["WEBHOOKS_JWT_ISSUER"],
		JWTAudience:      env["WEBHOOKS_JWT_AUDIENCE"],
		TenantClaim:      env["WEBHOOKS_TENANT_CLAIM"],
	}
	if c.TenantClaim == "" {
		c.TenantClaim = "tenant_id"
	}
	switch v := strings.ToLower(env["WEBHOOKS_ALLOW_PRIVATE_TARGETS"]); v {
	case "", "false", "0":
	case "true", "1":
		c.AllowPrivateTargets = true
	default:
		return c, fmt.Errorf("WEBHOOKS_ALLOW_PRIVATE_TARGETS must be true or false, not %q", v)
	}
	return c, nil
}

// Require checks that the named settings are present, naming every missing variable.
func (c Config) Require(names ...string) error {
	vals := map[string]string{
		"WEBHOOKS_ENDPOINTS_TABLE":    c.EndpointsTable,
		"WEBHOOKS_IDEMPOTENCY_TABLE":  c.IdempotencyTable,
		"WEBHOOKS_RATE_LIMIT_TABLE":   c.RateLimitTable,
		"WEBHOOKS_REPLAYS_TABLE":      c.ReplaysTable,
		"WEBHOOKS_REPLAY_QUEUE_URL":   c.ReplayQueueURL,
		"WEBHOOKS_SECRETS_KEY_ID":     c.SecretsKeyID,
		"WEBHOOKS_CURSOR_SECRET_ARN":  c.CursorSecretARN,
		"WEBHOOKS_EVENTS_TABLE":       c.EventsTable,
		"WEBHOOKS_DELIVERIES_TABLE":   c.DeliveriesTable,
		"WEBHOOKS_INGEST_DLQ_URL":     c.IngestDLQURL,
		"WEBHOOKS_DELIVERY_QUEUE_URL": c.DeliveryQueueURL,
		"WEBHOOKS_JWKS_URL":           c.JWKSURL,
		"WEBHOOKS_JWT_ISSUER":         c.JWTIssuer,
		"WEBHOOKS_JWT_AUDIENCE":       c.JWTAudience,
	}
	var missing []string
	for _, n := range names {
		v, known := vals[n]
		if !known {
			return fmt.Errorf("config: unknown setting %s", n)
		}
		if v == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("config: missing %s", strings.Join(missing, ", "))
	}
	return nil
}

func envMap() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "WEBHOOKS_") {
			m[k] = v
		}
	}
	return m
}
