// Package lambdaapi is the Lambda entry path of the API functions: API Gateway HTTP API
// (payload 2.0) events are turned into net/http requests for the shared handler by
// aws-lambda-go-api-proxy's core, and the responses back into API Gateway responses.
package lambdaapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/portal"
	"github.com/datajetty/webhooks/shared/wiring/coldstart"
)

// Handler adapts an http.Handler to the function signature lambda.Start expects. An event
// that cannot become an http.Request (a path that is not a valid URL, a body marked base64
// that is not) is answered 400 with the contract's error body, like any other bad request,
// instead of failing the invocation (API Gateway would answer its own 5xx).
func Handler(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var accessor core.RequestAccessorV2
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		req, err := accessor.EventToRequestWithContext(ctx, ev)
		if err != nil {
			id := domain.NewID("req_")
			slog.WarnContext(ctx, "event is not a valid HTTP request", "request_id", id, "error", err)
			status, body := api.RenderError(domain.Invalid("", "the request could not be read (malformed path, query or body encoding)"), id)
			return events.APIGatewayV2HTTPResponse{
				StatusCode: status,
				Headers:    map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "X-Request-Id": id},
				Body:       string(body),
			}, nil
		}
		w := core.NewProxyResponseWriterV2()
		h.ServeHTTP(w, req)
		return w.GetProxyResponse()
	}
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
