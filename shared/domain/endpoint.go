package domain

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"
)

// UserAgent identifies the service's requests to tenants' endpoints: handshakes and
// deliveries.
const UserAgent = "DataJetty-Webhooks/1.0 (+https://datajetty.com/docs/webhooks)"

// EndpointStatus is the delivery state of an endpoint.
type EndpointStatus string

// Endpoint states.
const (
	StatusActive   EndpointStatus = "active"
	StatusDisabled EndpointStatus = "disabled"
)

// DisabledReason is why an endpoint is disabled, as the API shows it.
type DisabledReason string

// Why an endpoint is disabled.
const (
	// DisabledByTenant: the tenant paused it (POST /endpoints/{endpoint_id}/disable).
	DisabledByTenant DisabledReason = "tenant"
	// DisabledGone: the receiver answered 410 Gone.
	DisabledGone DisabledReason = "gone"
	// DisabledFailing: consecutive deliveries exhausted every retry (auto-disable).
	DisabledFailing DisabledReason = "failing"
	// DisabledByOperator: an operator disabled it (docs/runbook.md).
	DisabledByOperator DisabledReason = "operator"
)

// DisabledReasons lists every reason, for validation and docs.
var DisabledReasons = []DisabledReason{DisabledByTenant, DisabledGone, DisabledFailing, DisabledByOperator}

// SecretRotationGrace is how long a replaced signing secret keeps signing deliveries, so
// receivers can roll their verifier without missing a webhook.
const SecretRotationGrace = 24 * time.Hour

// ConfigPropagation is how long the deliver function may go on using an endpoint's earlier
// configuration (URL, events, status, secrets) after a change is stored: each instance
// caches an endpoint for this long, so that a delivery costs no database read and no KMS
// call. After a secret rotation, deliveries within it may carry only the previous secret's
// signature.
const ConfigPropagation = 30 * time.Second

// Endpoint is a tenant's registered webhook destination.
type Endpoint struct {
	TenantID  string
	ID        string
	URL       string
	Events    []string
	Status    EndpointStatus
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
	// Watermark is the occurred_at of the latest event delivered successfully (zero: none).
	Watermark time.Time
	// DisabledReason says why Status is disabled; DisabledDetail says it in words (e.g.
	// "410 Gone"). Both are empty while the endpoint is active.
	DisabledReason DisabledReason
	DisabledDetail string
	// FailingSince is set while the endpoint is failing: the first delivery of its current
	// streak exhausted its retries then, and no delivery has succeeded since (the delivery
	// side sets it; a success or disabling clears it). Zero: not failing.
	FailingSince time.Time

	// SecretCiphertext is the current signing secret, encrypted (KMS); opaque here.
	SecretCiphertext []byte
	// PreviousSecretCiphertext keeps signing until PreviousSecretExpiresAt during rotation.
	PreviousSecretCiphertext []byte
	PreviousSecretExpiresAt  time.Time
}

// SigningCiphertexts returns the encrypted secrets that must sign a delivery made at now:
// the current one, plus the previous one while its rotation grace lasts.
func (e Endpoint) SigningCiphertexts(now time.Time) [][]byte {
	out := [][]byte{e.SecretCiphertext}
	if len(e.PreviousSecretCiphertext) > 0 && now.Before(e.PreviousSecretExpiresAt) {
		out = append(out, e.PreviousSecretCiphertext)
	}
	return out
}

// Subscribes reports whether the endpoint wants events of the given type.
func (e Endpoint) Subscribes(eventType string) bool { return MatchAny(e.Events, eventType) }

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns prefix + 26 random base32 characters (128 bits): unguessable and URL-safe.
func NewID(prefix string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // crypto/rand never fails on Linux
	}
	return prefix + idEncoding.EncodeToString(b[:])
}

// ID prefixes.
const (
	EndpointIDPrefix = "ep_"
	ReplayIDPrefix   = "rp_"
)

// ValidID reports whether id looks like one of ours with the given prefix, so a garbage id
// is refused before it reaches the database.
func ValidID(prefix, id string) bool {
	if !strings.HasPrefix(id, prefix) || len(id) != len(prefix)+26 {
		return false
	}
	for _, c := range id[len(prefix):] {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}
