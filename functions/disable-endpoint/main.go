// Command disable-endpoint is the Lambda function behind POST
// /endpoints/{endpoint_id}/disable. Its cold start (configuration, AWS clients, adapters and
// the shared handler with only this route) is shared/lambdaapi with apifn.Route; it links
// the SDK clients of DynamoDB and SQS (it publishes webhooks.endpoint.disabled to the
// IngestQueue).
package main

import (
	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/lambdaapi"
	"github.com/datajetty/webhooks/shared/wiring/apifn"
	"github.com/datajetty/webhooks/shared/wiring/withsqs"
)

func main() { lambdaapi.Run(apifn.Route(api.RouteDisableEndpoint, withsqs.Services)) }
