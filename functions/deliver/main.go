// Command deliver is the DeliveryQueue consumer: it signs and POSTs each job to its
// endpoint and schedules retries through the message's visibility (shared/delivery). Its
// cold start (configuration, AWS clients, adapters) is shared/lambdaworker with the
// builder from shared/wiring.
package main

import (
	"github.com/datajetty/webhooks/shared/lambdaworker"
	"github.com/datajetty/webhooks/shared/wiring"
)

func main() { lambdaworker.Run("deliver", wiring.Deliver) }
