// Command disable-endpoint is the Lambda function behind POST
// /endpoints/{endpoint_id}/disable. Its cold start (configuration, AWS clients, adapters and
// the shared handler with only this route) is shared/lambdaapi with apifn.Route; it links
// the SDK client of DynamoDB only.
package main

import (
	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/lambdaapi"
	"github.com/datajetty/webhooks/shared/wiring/apifn"
)

func main() { lambdaapi.Run(apifn.Route(api.RouteDisableEndpoint)) }
