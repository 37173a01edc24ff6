// Package app holds the application services behind the tenant API: registering and
// listing endpoints, and starting replays. It orchestrates the domain rules and talks to the
// outside world only through the ports declared here.
package app

import (
	"context"
	"time"

	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/signing"
)

// EndpointStore persists endpoints. Implementations return errors matching domain.ErrNotFound
// and domain.ErrConflict (with a domain Reason) so callers never see storage details.
type EndpointStore interface {
	// GetEndpoint loads one endpoint of the tenant; domain.ErrNotFound if absent.
	GetEndpoint(ctx context.Context, tenantID, endpointID string) (domain.Endpoint, error)
	// FindEndpointByURL loads the tenant's endpoint registered for the normalised URL.
	FindEndpointByURL(ctx context.Context, tenantID, url string) (domain.Endpoint, error)
	// CreateEndpoint stores a new endpoint and claims its URL atomically; a URL already
	// claimed is a Conflict with domain.ReasonURLTaken.
	CreateEndpoint(ctx context.Context, ep domain.Endpoint) error
	// UpdateEndpoint replaces ep if its stored version is still expectedVersion (else a
	// Conflict with domain.ReasonVersionMismatch). When the URL changed, previousURL's claim
	// is released and the new URL claimed in the same transaction.
	UpdateEndpoint(ctx context.Context, ep domain.Endpoint, expectedVersion int64, previousURL string) error
	// ListEndpoints returns up to limit endpoints of the tenant in id order after afterID
	// ("" for the first page), and whether more follow.
	ListEndpoints(ctx context.Context, tenantID string, limit int, afterID string) ([]domain.Endpoint, bool, error)
	// DeleteEndpoint deletes ep and frees its URL if its stored version is still
	// expectedVersion (else a Conflict with domain.ReasonVersionMismatch; NotFound if gone).
	DeleteEndpoint(ctx context.Context, ep domain.Endpoint, expectedVersion int64) error
	// Disable marks the endpoint disabled with reason and detail (bumping its version)
	// unless it already is; it returns the endpoint after the call and whether this call
	// disabled it. NotFound if absent.
	Disable(ctx context.Context, tenantID, endpointID string, reason domain.DisabledReason, detail string, now time.Time) (domain.Endpoint, bool, error)
}

// ReplayStore persists replay jobs and the per-endpoint replay lock.
type ReplayStore interface {
	// StartReplay atomically takes the endpoint's replay lock until leaseUntil (the endpoint
	// must exist, be active, and have no unexpired lock) and stores r. Failures: NotFound,
	// Conflict with domain.ReasonEndpointDisabled or domain.ReasonReplayInProgress.
	StartReplay(ctx context.Context, r domain.Replay, leaseUntil, now time.Time) error
	// GetReplay loads one replay of the tenant; domain.ErrNotFound if absent.
	GetReplay(ctx context.Context, tenantID, replayID string) (domain.Replay, error)
	// AbortReplay marks r failed with reason and releases the endpoint's lock.
	AbortReplay(ctx context.Context, r domain.Replay, reason string, now time.Time) error
}

// SecretBox encrypts signing secrets at rest (KMS), bound to their tenant and endpoint so a
// ciphertext moved to another endpoint does not decrypt.
type SecretBox interface {
	Seal(ctx context.Context, tenantID, endpointID string, s signing.Secret) ([]byte, error)
	Open(ctx context.Context, tenantID, endpointID string, ciphertext []byte) (signing.Secret, error)
}

// Challenger proves the tenant controls a URL (shared/handshake).
type Challenger interface {
	Verify(ctx context.Context, url string, secret signing.Secret) error
}

// ReplayQueue hands a started replay to the replay worker.
type ReplayQueue interface {
	SendReplay(ctx context.Context, tenantID, replayID string) error
}

// StoredResponse is a completed POST's response, kept for idempotent replays.
type StoredResponse struct {
	Status      int
	ContentType string
	Location    string
	// Body never holds a generated secret in clear: the API replaces it with a placeholder
	// and keeps it encrypted (KMS, bound to SecretEndpointID) in SealedSecret.
	Body             []byte
	SealedSecret     []byte
	SecretEndpointID string
}

// IdempotencyStore remembers POST responses per tenant and X-Request-Id for 24 h.
type IdempotencyStore interface {
	// Reserve claims the tenant's request id for a request with the given fingerprint, leased until leaseUntil
	// (a crashed execution does not block the key forever). It returns (nil, nil) when the
	// caller now owns the key and must Complete or Release it; the stored response when the
	// same request already completed; a domain Conflict with ReasonIdempotencyReused when the
	// key was used for a different request; a domain Conflict with ReasonRequestInProgress
	// while another execution holds the lease.
	Reserve(ctx context.Context, tenantID, requestID, fingerprint string, leaseUntil, now time.Time) (*StoredResponse, error)
	// Complete stores the response for the key until expiresAt.
	Complete(ctx context.Context, tenantID, requestID string, resp StoredResponse, expiresAt time.Time) error
	// Release forgets a reservation whose request failed transiently, so a retry may run.
	Release(ctx context.Context, tenantID, requestID string) error
}

// RateLimiter admits at most limit requests of a tenant per rule in any interval of length
// window (a sliding window shared by every instance).
type RateLimiter interface {
	// Take admits one request of the tenant under the named rule at now, unless limit
	// requests were already admitted in the window before now (then nothing is counted).
	Take(ctx context.Context, tenantID, rule string, limit int, window time.Duration, now time.Time) (RateDecision, error)
}

// RateDecision is what a RateLimiter decided for one request.
type RateDecision struct {
	Allowed bool
	// Count is the number of requests admitted in the window that ends at now, this one
	// included when Allowed (limit when refused).
	Count int
	// Reset is when the oldest of those leaves the window, so that one more request can be
	// admitted: a refused request may be retried from then on.
	Reset time.Time
}

// Notifier publishes the service's own events about endpoints to the IngestQueue
// (shared/queue.ServiceEvents).
type Notifier interface {
	Publish(ctx context.Context, e domain.Event) error
}
