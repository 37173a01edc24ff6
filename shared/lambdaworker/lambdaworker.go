// Package lambdaworker is the Lambda entry path of the queue-consumer functions: the shared
// cold start (coldstart.Run) builds the consumer once (workerfn.Function: the consumer with
// the services its entry point names), then the Lambda loop runs its SQS handler, and on
// SIGTERM (Lambda ends the instance) the consumer's shutdown work.
package lambdaworker

import (
	"context"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/datajetty/webhooks/shared/wiring/coldstart"
	"github.com/datajetty/webhooks/shared/wiring/workerfn"
)

// shutdownBudget is what the shutdown work may take of the ~500 ms Lambda leaves between
// SIGTERM and SIGKILL.
const shutdownBudget = 400 * time.Millisecond

// Run starts the consumer fn; a bad configuration fails the cold start with the missing
// variable's name in the log. When the consumer left work for the end of the instance
// (the deliver function's waiting watermarks), the function registers for SIGTERM
// (lambda.WithEnableSIGTERM registers it as an extension, which is what makes Lambda send
// the signal) and does that work then.
func Run(fn coldstart.Function[workerfn.SQSHandler]) {
	shutdown := &workerfn.Shutdown{}
	build := fn.Build
	fn.Build = func(ctx context.Context, b coldstart.Boot) (workerfn.SQSHandler, error) {
		return build(workerfn.WithShutdown(ctx, shutdown), b)
	}
	h := coldstart.Run(fn)
	var opts []lambda.Option
	if shutdown.Len() > 0 {
		opts = append(opts, lambda.WithEnableSIGTERM(func() {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownBudget)
			defer cancel()
			shutdown.Run(ctx)
		}))
	}
	lambda.StartWithOptions(h, opts...)
}
