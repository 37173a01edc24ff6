// Command ingest is the IngestQueue consumer: it stores each platform event once and fans
// it out to the DeliveryQueue (shared/ingest). Its cold start (configuration, AWS clients,
// adapters) is shared/lambdaworker with workerfn.Function; it links the SDK clients of
// DynamoDB and SQS.
package main

import (
	"github.com/datajetty/webhooks/shared/lambdaworker"
	"github.com/datajetty/webhooks/shared/wiring/workerfn"
)

func main() { lambdaworker.Run(workerfn.Function("ingest", workerfn.Ingest)) }
