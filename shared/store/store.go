// Package store holds the DynamoDB adapters: endpoints, replays, idempotency records and
// rate-limit windows. Each adapter implements a port declared by its user (shared/app,
// shared/api) and reports failures in the domain's vocabulary: NotFound, Conflict with a
// stable reason, or Unavailable when DynamoDB is throttling or down.
//
// Storage shapes (the unexported *Item structs with dynamodbav tags) are kept apart from the
// domain types so that the table layout can evolve without touching the domain.
package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/datajetty/webhooks/shared/awserr"
)

// dependency names DynamoDB in errors a client may see.
const dependency = "database"

// dbErr wraps err with the operation that failed and classifies it: transient failures
// become domain.Unavailable, anything else an internal error.
func dbErr(op string, err error) error {
	return awserr.Classify(dependency, fmt.Errorf("%s: %w", op, err))
}

// conditionFailed returns the ConditionalCheckFailedException in err, if any. Its Item is
// the stored item when the request asked for ReturnValuesOnConditionCheckFailure ALL_OLD.
func conditionFailed(err error) (*types.ConditionalCheckFailedException, bool) {
	var ccf *types.ConditionalCheckFailedException
	ok := errors.As(err, &ccf)
	return ccf, ok
}

// Cancellation reason codes of TransactWriteItems (one per item, "None" when it passed).
const (
	codeNone            = "None"
	codeConditionFailed = "ConditionalCheckFailed"
)

// transientCancelCodes mean the transaction lost a race or was throttled, not that a
// condition is false: retrying later may succeed.
var transientCancelCodes = map[string]bool{
	"TransactionConflict":           true,
	"ProvisionedThroughputExceeded": true,
	"ThrottlingError":               true,
	"RequestLimitExceeded":          true,
}

// cancellation describes why a TransactWriteItems call was cancelled.
type cancellation struct {
	reasons []types.CancellationReason
}

// cancelled returns the cancellation in err, if err is a TransactionCanceledException.
func cancelled(err error) (cancellation, bool) {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return cancellation{}, false
	}
	return cancellation{reasons: tce.CancellationReasons}, true
}

// complete reports whether the service gave one reason per item of a transaction of n
// items; without them the caller falls back to reading the items.
func (c cancellation) complete(n int) bool { return len(c.reasons) == n }

// code returns the reason code of item i ("" when unknown).
func (c cancellation) code(i int) string {
	if i < len(c.reasons) && c.reasons[i].Code != nil {
		return *c.reasons[i].Code
	}
	return ""
}

// conditionFailed reports whether item i failed its condition.
func (c cancellation) conditionFailed(i int) bool { return c.code(i) == codeConditionFailed }

// item returns the stored item i returned by ReturnValuesOnConditionCheckFailure ALL_OLD.
func (c cancellation) item(i int) map[string]types.AttributeValue {
	if i < len(c.reasons) {
		return c.reasons[i].Item
	}
	return nil
}

// transient reports whether any item failed for a transient reason.
func (c cancellation) transient() bool {
	for i := range c.reasons {
		if transientCancelCodes[c.code(i)] {
			return true
		}
	}
	return false
}

// formatTime stores times as RFC 3339 UTC strings with nanoseconds, which sort
// chronologically; the zero time is stored as "" (and then omitted).
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// parseTime reverses formatTime.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}
