// Command get-endpoint is the Lambda function behind GET /endpoints/{endpoint_id}. Everything it
// does at cold start (read and check the configuration, build the AWS clients, adapters and
// the shared handler with only this route) lives in shared/lambdaapi, identical for every
// API function.
package main

import (
	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/lambdaapi"
)

func main() { lambdaapi.Run(api.RouteGetEndpoint) }
