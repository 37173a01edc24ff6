// Package lambdaworker is the Lambda entry path of the queue-consumer functions: the shared
// cold start (coldstart.Run) builds the consumer once (workerfn.Function: the consumer with
// the services its entry point names), then the Lambda loop runs its SQS handler.
package lambdaworker

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/datajetty/webhooks/shared/wiring/coldstart"
	"github.com/datajetty/webhooks/shared/wiring/workerfn"
)

// Run starts the consumer fn; a bad configuration fails the cold start with the missing
// variable's name in the log.
func Run(fn coldstart.Function[workerfn.SQSHandler]) {
	lambda.Start(coldstart.Run(fn))
}
