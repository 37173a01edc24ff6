package awserr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/datajetty/webhooks/shared/domain"
)

func httpError(status int, err error) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      err,
	}}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	code := func(c string) error { return &smithy.GenericAPIError{Code: c, Message: "m"} }
	tests := []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"throughput exceeded", &types.ProvisionedThroughputExceededException{}, true},
		{"throttling", code("ThrottlingException"), true},
		{"request limit", &types.RequestLimitExceeded{}, true},
		{"transaction conflict", &types.TransactionConflictException{}, true},
		{"kms internal", code("KMSInternalException"), true},
		{"sqs throttled", code("RequestThrottled"), true},
		{"http 500", httpError(500, code("InternalFailure")), true},
		{"http 503", httpError(503, errors.New("unavailable")), true},
		{"connection refused", &smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, true},
		{"deadline", fmt.Errorf("call: %w", context.DeadlineExceeded), true},
		{"retries exhausted", &retry.MaxAttemptsError{Attempt: 3, Err: errors.New("x")}, true},
		{"retry quota", errors.Join(errors.New("x"), ratelimit.QuotaExceededError{}), true},
		{"condition failed", &types.ConditionalCheckFailedException{}, false},
		{"validation", httpError(400, code("ValidationException")), false},
		{"access denied", code("AccessDeniedException"), false},
		{"cancelled", context.Canceled, false},
		{"plain", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Classify("database", tt.err)
			if errors.Is(got, domain.ErrUnavailable) != tt.unavailable {
				t.Fatalf("Classify(%v) = %v (kind %d), unavailable want %v", tt.err, got, domain.KindOf(got), tt.unavailable)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("Classify lost the cause: %v", got)
			}
			if !tt.unavailable && domain.KindOf(got) != domain.KindInternal {
				t.Errorf("kind = %d, want internal", domain.KindOf(got))
			}
		})
	}
}

func TestClassifyPassesThrough(t *testing.T) {
	t.Parallel()
	if Classify("database", nil) != nil {
		t.Error("Classify(nil) != nil")
	}
	nf := domain.NotFound("gone")
	if got := Classify("database", fmt.Errorf("ctx: %w", nf)); !errors.Is(got, domain.ErrNotFound) {
		t.Errorf("a domain error was reclassified: %v", got)
	}
	if got := Classify("database", &types.ProvisionedThroughputExceededException{}); got.(*domain.Error).Msg != "database is temporarily unavailable" {
		t.Errorf("message = %q", got.(*domain.Error).Msg)
	}
}
