package api

import (
	"context"
	"strconv"
	"time"
)

// StoredResponse is a completed POST's response, kept for idempotent replays.
type StoredResponse struct {
	Status      int
	ContentType string
	Location    string
	// Body never holds a generated secret in clear: it is replaced by secretPlaceholder and
	// kept encrypted (KMS, bound to SecretEndpointID) in SealedSecret.
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

// RateLimiter counts requests in fixed windows shared by every instance.
type RateLimiter interface {
	// Take counts one request against key's window containing now. Callers build keys with
	// TenantKey so no two tenants can share one. It returns the count
	// including this request when allowed; allowed is false (and nothing is counted) once
	// limit requests were admitted in the window.
	Take(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (count int, allowed bool, err error)
}

// TenantKey builds a storage key that no other tenant's key can equal, whatever characters
// tenant ids contain (the tenant is length-prefixed).
func TenantKey(tenantID, suffix string) string {
	return strconv.Itoa(len(tenantID)) + ":" + tenantID + "#" + suffix
}
