// Command replay-worker is the ReplayQueue consumer: it pages a replay's events and
// enqueues their deliveries (shared/replayworker). Its cold start (configuration, AWS
// clients, adapters) is shared/lambdaworker with workerfn.Function; it links the SDK
// clients of DynamoDB and SQS.
package main

import (
	"github.com/datajetty/webhooks/shared/lambdaworker"
	"github.com/datajetty/webhooks/shared/wiring/workerfn"
)

func main() { lambdaworker.Run(workerfn.Function("replay-worker", workerfn.ReplayWorker)) }
