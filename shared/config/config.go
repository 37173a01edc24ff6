// Package config reads the functions' configuration from the environment once, at cold
// start, into a typed and validated struct. The variable names are a stable interface
// (README "Configuration").
//
// Every variable is declared once, below, as a Var: its name, default and who reads it.
// Parsing, defaults and the required checks come from the declarations; shared/wiring
// names the variables each route and consumer needs by their Var; and a test holds
// template.yaml's function environment and the README's table to the same list.
package config

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// Config is every setting a function or the local server may need. Which fields are
// required depends on the function; see Require.
type Config struct {
	EndpointsTable   string
	IdempotencyTable string
	RateLimitTable   string
	ReplaysTable     string
	ReplayQueueURL   string
	SecretsKeyID     string
	CursorSecretARN  string
	EventsTable      string
	DeliveriesTable  string
	IngestDLQURL     string
	DeliveryQueueURL string
	IngestQueueURL   string

	JWKSURL     string
	JWTIssuer   string
	JWTAudience string
	TenantClaim string

	// PortalFrameAncestors is who may embed the tenant portal in a frame: the CSP
	// frame-ancestors source list (shared/portal checks it).
	PortalFrameAncestors string

	// AllowPrivateTargets permits http and private destinations: local development and
	// tests only, never set in template.yaml.
	AllowPrivateTargets bool
}

// Reader says who reads a variable, and so where it is set.
type Reader int

const (
	// Deployed variables are read by the functions and set by template.yaml.
	Deployed Reader = iota + 1
	// LocalOnly variables are read by the functions but set only by local development and
	// tests; template.yaml must never set them.
	LocalOnly
	// Tool variables are read only by a local tool (make dev, make publish, make receiver).
	Tool
	// SDK variables are read by the AWS SDK itself.
	SDK
)

func (r Reader) String() string {
	switch r {
	case Deployed:
		return "deployed"
	case LocalOnly:
		return "local only"
	case Tool:
		return "tool"
	case SDK:
		return "SDK"
	}
	return fmt.Sprintf("Reader(%d)", int(r))
}

// Var is one configuration variable.
type Var struct {
	// Name is the environment variable.
	Name string
	// Default is the value when the variable is unset or empty.
	Default string
	// Reader is who reads it.
	Reader Reader

	// text or flag is the Config field the functions read it into (neither for Tool and
	// SDK variables).
	text func(*Config) *string
	flag func(*Config) *bool
}

// Get returns the variable's value in the process environment, or its default: how the
// local tools read their variables.
func (v Var) Get() string {
	if s := os.Getenv(v.Name); s != "" {
		return s
	}
	return v.Default
}

// vars holds every declaration, in declaration order.
var vars []Var

func declare(v Var) Var {
	vars = append(vars, v)
	return v
}

func text(name string, r Reader, field func(*Config) *string) Var {
	return declare(Var{Name: name, Reader: r, text: field})
}

// The variables: the single declaration of each name.
var (
	EndpointsTable   = text("WEBHOOKS_ENDPOINTS_TABLE", Deployed, func(c *Config) *string { return &c.EndpointsTable })
	IdempotencyTable = text("WEBHOOKS_IDEMPOTENCY_TABLE", Deployed, func(c *Config) *string { return &c.IdempotencyTable })
	RateLimitTable   = text("WEBHOOKS_RATE_LIMIT_TABLE", Deployed, func(c *Config) *string { return &c.RateLimitTable })
	ReplaysTable     = text("WEBHOOKS_REPLAYS_TABLE", Deployed, func(c *Config) *string { return &c.ReplaysTable })
	ReplayQueueURL   = text("WEBHOOKS_REPLAY_QUEUE_URL", Deployed, func(c *Config) *string { return &c.ReplayQueueURL })
	SecretsKeyID     = text("WEBHOOKS_SECRETS_KEY_ID", Deployed, func(c *Config) *string { return &c.SecretsKeyID })
	CursorSecretARN  = text("WEBHOOKS_CURSOR_SECRET_ARN", Deployed, func(c *Config) *string { return &c.CursorSecretARN })
	EventsTable      = text("WEBHOOKS_EVENTS_TABLE", Deployed, func(c *Config) *string { return &c.EventsTable })
	DeliveriesTable  = text("WEBHOOKS_DELIVERIES_TABLE", Deployed, func(c *Config) *string { return &c.DeliveriesTable })
	IngestDLQURL     = text("WEBHOOKS_INGEST_DLQ_URL", Deployed, func(c *Config) *string { return &c.IngestDLQURL })
	DeliveryQueueURL = text("WEBHOOKS_DELIVERY_QUEUE_URL", Deployed, func(c *Config) *string { return &c.DeliveryQueueURL })
	// IngestQueueURL is where the service publishes its notifications about endpoints (the
	// deliver and disable functions), and the IngestQueue make publish sends to.
	IngestQueueURL = text("WEBHOOKS_INGEST_QUEUE_URL", Deployed, func(c *Config) *string { return &c.IngestQueueURL })

	JWKSURL     = text("WEBHOOKS_JWKS_URL", Deployed, func(c *Config) *string { return &c.JWKSURL })
	JWTIssuer   = text("WEBHOOKS_JWT_ISSUER", Deployed, func(c *Config) *string { return &c.JWTIssuer })
	JWTAudience = text("WEBHOOKS_JWT_AUDIENCE", Deployed, func(c *Config) *string { return &c.JWTAudience })
	TenantClaim = declare(Var{Name: "WEBHOOKS_TENANT_CLAIM", Default: "tenant_id", Reader: Deployed,
		text: func(c *Config) *string { return &c.TenantClaim }})
	PortalFrameAncestors = declare(Var{Name: "WEBHOOKS_PORTAL_FRAME_ANCESTORS", Default: "'none'", Reader: Deployed,
		text: func(c *Config) *string { return &c.PortalFrameAncestors }})

	AllowPrivateTargets = declare(Var{Name: "WEBHOOKS_ALLOW_PRIVATE_TARGETS", Reader: LocalOnly,
		flag: func(c *Config) *bool { return &c.AllowPrivateTargets }})

	// AWSEndpointURL is the SDK's own override: it points every AWS client at the emulator.
	AWSEndpointURL = declare(Var{Name: "AWS_ENDPOINT_URL", Reader: SDK})
	// Addr is the listen address of the local server (make dev).
	Addr = declare(Var{Name: "WEBHOOKS_ADDR", Default: "127.0.0.1:8080", Reader: Tool})
	// DemoAddr is the listen address of make dev's demo receiver.
	DemoAddr = declare(Var{Name: "WEBHOOKS_DEMO_ADDR", Default: "127.0.0.1:8081", Reader: Tool})
	// DemoSecret is the signing secret the stand-alone receiver (make receiver) verifies with.
	DemoSecret = declare(Var{Name: "WEBHOOKS_DEMO_SECRET", Reader: Tool})
)

// Vars returns every declared variable, in declaration order.
func Vars() []Var { return slices.Clone(vars) }

// FromEnv reads the configuration from the process environment.
func FromEnv() (Config, error) {
	env := map[string]string{}
	for _, v := range vars {
		env[v.Name] = os.Getenv(v.Name)
	}
	return FromMap(env)
}

// FromMap reads the configuration from a map of variables (tests and the local server).
func FromMap(env map[string]string) (Config, error) {
	var c Config
	for _, v := range vars {
		s := env[v.Name]
		if s == "" {
			s = v.Default
		}
		switch {
		case v.text != nil:
			*v.text(&c) = s
		case v.flag != nil:
			switch s = strings.ToLower(s); s {
			case "", "false", "0":
			case "true", "1":
				*v.flag(&c) = true
			default:
				return c, fmt.Errorf("%s must be true or false, not %q", v.Name, s)
			}
		}
	}
	return c, nil
}

// Require checks that the given settings are present, naming every missing variable.
func (c Config) Require(need ...Var) error {
	var missing []string
	for _, v := range need {
		if v.text == nil {
			return fmt.Errorf("config: %s is not a setting the functions can require", v.Name)
		}
		if *v.text(&c) == "" && !slices.Contains(missing, v.Name) {
			missing = append(missing, v.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("config: missing %s", strings.Join(missing, ", "))
	}
	return nil
}
