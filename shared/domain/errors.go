// Package domain holds the webhooks service's types and rules: endpoints, event-type
// patterns, replays and the error vocabulary. It knows nothing of DynamoDB, SQS or HTTP.
package domain

import (
	"errors"
	"fmt"
)

// Kind classifies an error for the single place that maps errors to the contract's HTTP
// status and error code (see shared/api).
type Kind int

// The kinds of failure the contract distinguishes.
const (
	KindInternal     Kind = iota // a bug or an unexpected failure: 500 internal_error
	KindInvalid                  // the request is malformed: 400 invalid_request
	KindUnauthorized             // no valid credentials: 401 unauthorized
	KindForbidden                // valid credentials without the needed scope: 403 forbidden
	KindNotFound                 // unknown, or another tenant's, resource: 404 not_found
	KindConflict                 // a concurrent or conflicting change: 409 version_conflict
	KindRateLimited              // over the tenant's request budget: 429 rate_limited
	KindUnavailable              // a dependency is down or throttling: 503 dependency_down
)

// Error is the service's error type. Msg is safe to show to the client; Err (the cause) is
// for logs only and never reaches a response.
type Error struct {
	Kind   Kind
	Msg    string
	Field  string // the request field at fault, for KindInvalid
	Reason string // a finer, stable machine-readable reason (e.g. "replay_in_progress")
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

// Unwrap exposes the cause to errors.Is/As.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, domain.ErrNotFound) and friends match on Kind alone.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Kind == e.Kind
}

// Sentinels for errors.Is; match any *Error of the same Kind.
var (
	ErrInvalid      = &Error{Kind: KindInvalid}
	ErrUnauthorized = &Error{Kind: KindUnauthorized}
	ErrForbidden    = &Error{Kind: KindForbidden}
	ErrNotFound     = &Error{Kind: KindNotFound}
	ErrConflict     = &Error{Kind: KindConflict}
	ErrRateLimited  = &Error{Kind: KindRateLimited}
	ErrUnavailable  = &Error{Kind: KindUnavailable}
)

// Invalid reports a malformed request field with a message that names it.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// NotFound reports an unknown resource. The message never reveals whether the resource
// exists under another tenant.
func NotFound(format string, args ...any) *Error {
	return &Error{Kind: KindNotFound, Msg: fmt.Sprintf(format, args...)}
}

// Conflict reports a conflicting change with a stable reason.
func Conflict(reason, format string, args ...any) *Error {
	return &Error{Kind: KindConflict, Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// Unavailable wraps a dependency failure (throttling, outage) that the client may retry.
func Unavailable(what string, err error) *Error {
	return &Error{Kind: KindUnavailable, Msg: what + " is temporarily unavailable", Err: err}
}

// Conflict reasons, stable for clients that branch on them.
const (
	ReasonVersionMismatch   = "version_mismatch"
	ReasonURLTaken          = "url_already_registered"
	ReasonReplayInProgress  = "replay_in_progress"
	ReasonEndpointDisabled  = "endpoint_disabled"
	ReasonIdempotencyReused = "idempotency_key_reused"
	ReasonRequestInProgress = "request_in_progress"
	// ReasonHandshakeFailed marks a 400 caused by the URL's challenge handshake.
	ReasonHandshakeFailed = "handshake_failed"
)

// ErrEndpointDeleted is wrapped by a write of the service's own components that found its
// endpoint deleted (a replay's checkpoint): the caller stops what it does for the endpoint.
// It never reaches a response.
var ErrEndpointDeleted = errors.New("the endpoint was deleted")

// Reasons lists every reason above: the error schema of docs/openapi.yaml must name each
// (a test in shared/api checks it).
var Reasons = []string{
	ReasonVersionMismatch, ReasonURLTaken, ReasonReplayInProgress, ReasonEndpointDisabled,
	ReasonIdempotencyReused, ReasonRequestInProgress, ReasonHandshakeFailed,
}

// KindOf returns the Kind of err, KindInternal for anything that is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}
