// Package awserr turns AWS SDK errors into the service's error vocabulary (shared/domain),
// so every adapter (DynamoDB, SQS, KMS) reports a dependency outage the same way: as
// domain.ErrUnavailable, which the API maps to 503 dependency_down and workers retry.
package awserr

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/datajetty/webhooks/shared/domain"
)

// transientCodes are API error codes that mean "the service cannot serve this right now"
// beyond the SDK's default throttle and retryable codes, which are checked too.
var transientCodes = map[string]bool{
	// DynamoDB
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"RequestLimitExceeded":                   true,
	"TransactionConflictException":           true, // another transaction holds the item; retrying succeeds
	"TransactionInProgressException":         true,
	"InternalServerError":                    true,
	"ServiceUnavailable":                     true,
	"LimitExceededException":                 true,
	// SQS
	"RequestThrottled": true,
	"KmsThrottled":     true,
	// KMS
	"KMSInternalException":       true,
	"DependencyTimeoutException": true,
	"KeyUnavailableException":    true,
}

// retryables is the SDK's own judgement of which errors are worth retrying: connection
// failures, HTTP 5xx, throttling and request timeouts.
var retryables = retry.IsErrorRetryables(retry.DefaultRetryables)

// Classify returns err as a domain.Unavailable(what, err) when it is a transient dependency
// failure (throttling, HTTP 5xx, a network error or timeout, or the SDK giving up after its
// retries), and otherwise wraps it as an internal error prefixed with what. A *domain.Error
// passes through unchanged and nil stays nil. Adapters handle the expected outcomes of a
// call (a failed condition, a missing item) before calling Classify.
//
// what names the dependency as the client may see it ("database", "queue", "key service").
func Classify(what string, err error) error {
	if err == nil {
		return nil
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return err
	}
	if IsTransient(err) {
		return domain.Unavailable(what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// IsTransient reports whether err is a dependency failure that a later retry may not meet.
// A cancelled context is not: the caller went away and retrying is pointless.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// The SDK wraps the last error this way only after it has retried a retryable error.
	var maxAttempts *retry.MaxAttemptsError
	var quota ratelimit.QuotaExceededError
	if errors.As(err, &maxAttempts) || errors.As(err, &quota) {
		return true
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && transientCodes[apiErr.ErrorCode()] {
		return true
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) && status.HTTPStatusCode() >= 500 {
		return true
	}
	if retryables.IsErrorRetryable(err) == aws.TrueTernary {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}
