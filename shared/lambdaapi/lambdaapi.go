// Package lambdaapi is the Lambda entry path of the API functions: API Gateway HTTP API
// (payload 2.0) events are turned into net/http requests for the shared handler by
// aws-lambda-go-api-proxy, and the responses back into API Gateway responses.
package lambdaapi

import (
	"context"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/portal"
	"github.com/datajetty/webhooks/shared/wiring/coldstart"
)

// Handler adapts an http.Handler to the function signature lambda.Start expects.
func Handler(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return httpadapter.NewV2(h).ProxyWithContext
}

// Run is the whole life of an API function: its cold start (coldstart.Run) builds the
// handler once (apifn.Route: the function's route with the services its entry point
// names), then the Lambda loop. A bad configuration fails the cold start with the missing
// variable's name in the log.
func Run(fn coldstart.Function[http.Handler]) {
	lambda.Start(Handler(coldstart.Run(fn)))
}

// RunPortal is the portal function: it serves the embedded tenant portal (shared/portal)
// under the API's base path. It needs no AWS client and no token (the page carries no
// secret; its API calls are authenticated by the API functions), only the frame-ancestors
// setting, checked at the cold start so a bad value fails it. The page is told the API's
// routes: the template deploys exactly those next to it (shared/api's agreement test).
func RunPortal() {
	Run(coldstart.Function[http.Handler]{Name: "portal", NameKey: "function", Build: func(_ context.Context, b coldstart.Boot) (http.Handler, error) {
		return portal.NewHandler(api.BasePath, b.Config.PortalFrameAncestors, api.RouteKeys())
	}})
}
