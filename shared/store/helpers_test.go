package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newStack provisions the template's tables for one test and returns a DynamoDB client and
// the resolved environment (table names).
func newStack(t *testing.T) (*dynamodb.Client, map[string]string) {
	t.Helper()
	stack := testenv.Stack(t, nil)
	return dynamodb.NewFromConfig(testenv.AWSConfig(t)), stack.Env
}

// downClient returns a client pointed at a loopback port nobody listens on, retrying twice
// without delay, so a dependency-down test fails fast.
func downClient(t *testing.T) *dynamodb.Client {
	t.Helper()
	cfg, _ := testenv.DownAWSConfig(t)
	return dynamodb.NewFromConfig(cfg)
}

// wantReason fails the test unless err is a domain Conflict with the given reason.
func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindConflict || de.Reason != reason {
		t.Fatalf("error = %v, want a Conflict with reason %q", err, reason)
	}
}

// wantKind fails the test unless err matches the sentinel.
func wantKind(t *testing.T, err, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("error = %v (kind %d), want kind of %v", err, domain.KindOf(err), sentinel)
	}
}

// t0 is a fixed instant with nanoseconds, so round trips of times are checked exactly.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

// bareErrors returns an emulator client whose condition failures arrive without the
// details the stores ask for (CancellationReasons of a cancelled transaction, the ALL_OLD
// item of a ConditionalCheckFailedException), to exercise their fallback reads.
func bareErrors(t *testing.T) *dynamodb.Client {
	t.Helper()
	strip := middleware.DeserializeMiddlewareFunc("StripErrorDetails", func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleDeserialize(ctx, in)
		var tce *types.TransactionCanceledException
		if errors.As(err, &tce) {
			tce.CancellationReasons = nil
		}
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			ccf.Item = nil
		}
		return out, md, err
	})
	return dynamodb.NewFromConfig(testenv.AWSConfig(t), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Deserialize.Add(strip, middleware.Before)
		})
	})
}
