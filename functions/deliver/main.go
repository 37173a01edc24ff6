// Command deliver is the DeliveryQueue consumer: it signs and POSTs each job to its
// endpoint and schedules retries through the message's visibility (shared/delivery). Its
// cold start (configuration, AWS clients, adapters) is shared/lambdaworker with
// workerfn.Function; it links the SDK clients of DynamoDB, SQS and KMS (it opens signing
// secrets).
package main

import (
	"github.com/datajetty/webhooks/shared/lambdaworker"
	"github.com/datajetty/webhooks/shared/wiring/withkms"
	"github.com/datajetty/webhooks/shared/wiring/workerfn"
)

func main() { lambdaworker.Run(workerfn.Function("deliver", workerfn.Deliver, withkms.Services)) }
