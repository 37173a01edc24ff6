// Package lambdaapi is the Lambda entry path of the API functions: API Gateway HTTP API
// (payload 2.0) events are turned into net/http requests for the shared handler by
// aws-lambda-go-api-proxy, and the responses back into API Gateway responses.
package lambdaapi

import (
	"context"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/metrics"
	"github.com/datajetty/webhooks/shared/portal"
	"github.com/datajetty/webhooks/shared/wiring"
)

// Handler adapts an http.Handler to the function signature lambda.Start expects.
func Handler(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return httpadapter.NewV2(h).ProxyWithContext
}

// Run is the whole cold start of an API function serving route: the shared cold start
// (wiring.ColdStart) builds the handler once, then the Lambda loop. A bad configuration
// fails the cold start with the missing variable's name in the log.
func Run(route string) {
	h := wiring.ColdStart(func(ctx context.Context, b wiring.Boot) (*api.Handler, error) {
		return wiring.API(ctx, b.Config, b.AWS, wiring.APIOptions{Logger: b.Logger, Metrics: metrics.New(os.Stdout, "api")}, route)
	}, "route", route)
	lambda.Start(Handler(h))
}

// RunPortal is the cold start of the portal function: it serves the embedded tenant portal
// (shared/portal) under the API's base path. It needs no AWS client and no token (the page
// carries no secret; its API calls are authenticated by the API functions), only the
// frame-ancestors setting, checked at the cold start so a bad value fails it.
func RunPortal() {
	h := wiring.ColdStart(func(_ context.Context, b wiring.Boot) (*portal.Handler, error) {
		return portal.NewHandler(api.BasePath, b.Config.PortalFrameAncestors)
	}, "function", "portal")
	lambda.Start(Handler(h))
}
