// Command list-event-types is the Lambda function behind GET /event-types. Its cold start
// (configuration, AWS clients, adapters and the shared handler with only this route) is
// shared/lambdaapi with apifn.Route; it links the SDK clients of DynamoDB only (the rate
// limit).
package main

import (
	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/lambdaapi"
	"github.com/datajetty/webhooks/shared/wiring/apifn"
)

func main() { lambdaapi.Run(apifn.Route(api.RouteListEventTypes)) }
