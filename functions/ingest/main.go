// Command ingest is the IngestQueue consumer: it stores each platform event once and fans
// it out to the DeliveryQueue (shared/ingest). Its cold start (configuration, AWS clients,
// adapters) is shared/lambdaworker with the builder from shared/wiring.
package main

import (
	"github.com/datajetty/webhooks/shared/lambdaworker"
	"github.com/datajetty/webhooks/shared/wiring"
)

func main() { lambdaworker.Run("ingest", wiring.Ingest) }
