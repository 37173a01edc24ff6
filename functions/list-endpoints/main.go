// Command list-endpoints is the Lambda function behind GET /endpoints. Its cold start
// (configuration, AWS clients, adapters and the shared handler with only this route) is
// shared/lambdaapi with apifn.Route; it links the SDK clients of DynamoDB and Secrets
// Manager (the cursor-signing key).
package main

import (
	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/lambdaapi"
	"github.com/datajetty/webhooks/shared/wiring/apifn"
	"github.com/datajetty/webhooks/shared/wiring/withsecrets"
)

func main() { lambdaapi.Run(apifn.Route(api.RouteListEndpoints, withsecrets.Services)) }
