// Package lambdaworker is the Lambda entry path of the queue-consumer functions: the shared
// cold start (wiring.ColdStart) builds the consumer once, then the Lambda loop runs its
// SQS handler.
package lambdaworker

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/metrics"
	"github.com/datajetty/webhooks/shared/wiring"
)

// Builder builds a consumer from configuration (wiring.Ingest, wiring.Deliver, …).
type Builder func(config.Config, aws.Config, wiring.WorkerOptions) (wiring.SQSHandler, error)

// Run starts the named consumer; a bad configuration fails the cold start with the
// missing variable's name in the log. name is also the metrics' Function dimension.
func Run(name string, build Builder) {
	h := wiring.ColdStart(func(_ context.Context, b wiring.Boot) (wiring.SQSHandler, error) {
		return build(b.Config, b.AWS, wiring.WorkerOptions{Logger: b.Logger, Metrics: metrics.New(os.Stdout, name)})
	}, "function", name)
	lambda.Start(h)
}
