// Command replay-worker is the ReplayQueue consumer: it pages a replay's events and
// enqueues their deliveries (shared/replayworker). Its cold start (configuration, AWS
// clients, adapters) is shared/lambdaworker with the builder from shared/wiring.
package main

import (
	"github.com/datajetty/webhooks/shared/lambdaworker"
	"github.com/datajetty/webhooks/shared/wiring"
)

func main() { lambdaworker.Run("replay-worker", wiring.ReplayWorker) }
