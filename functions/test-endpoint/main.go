// Command test-endpoint is the Lambda function behind POST /endpoints/{endpoint_id}/test.
// Its cold start (configuration, AWS clients, adapters and the shared handler with only this
// route) is shared/lambdaapi with apifn.Route; it links the SDK clients of DynamoDB and KMS
// (it opens the signing secret to sign the test).
package main

import (
	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/lambdaapi"
	"github.com/datajetty/webhooks/shared/wiring/apifn"
	"github.com/datajetty/webhooks/shared/wiring/withkms"
)

func main() { lambdaapi.Run(apifn.Route(api.RouteTestEndpoint, withkms.Services)) }
