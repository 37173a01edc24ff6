// Package lambdaapi is the Lambda entry path of the API functions: API Gateway HTTP API
// (payload 2.0) events are turned into net/http requests for the shared handler by
// aws-lambda-go-api-proxy, and the responses back into API Gateway responses.
package lambdaapi

import (
	"context"
	"log/slog"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/metrics"
	"github.com/datajetty/webhooks/shared/wiring"
)

// Handler adapts an http.Handler to the function signature lambda.Start expects.
func Handler(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return httpadapter.NewV2(h).ProxyWithContext
}

// Run is the whole cold start of an API function serving route: configuration read and
// checked once, AWS clients and adapters built once, then the Lambda loop. A bad
// configuration fails the cold start with the missing variable's name in the log.
func Run(route string) {
	ctx := context.Background()
	logger := lambdacontext.NewLogger()
	slog.SetDefault(logger)
	cfg, err := config.FromEnv()
	if err != nil {
		logger.Error("invalid configuration", "error", err)
		os.Exit(1)
	}
	awsCfg, err := wiring.LoadAWS(ctx)
	if err != nil {
		logger.Error("AWS configuration", "error", err)
		os.Exit(1)
	}
	h, err := wiring.API(ctx, cfg, awsCfg, wiring.APIOptions{Logger: logger, Metrics: metrics.New(os.Stdout, "api")}, route)
	if err != nil {
		logger.Error("cold start failed", "route", route, "error", err)
		os.Exit(1)
	}
	lambda.Start(Handler(h))
}
