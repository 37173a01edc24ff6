// Package wiring builds the whole service for the local server (make dev), the tests and
// the tools: every route and every consumer, with every AWS service. The Lambda functions
// build through the same code, one function at a time and with only the services each
// calls: shared/wiring/coldstart (the cold start they share), shared/wiring/apifn (the API
// routes), shared/wiring/workerfn (the queue consumers) and the services withkms, withsqs
// and withsecrets, so that a function's binary links only the SDK clients it uses.
package wiring

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/wiring/apifn"
	"github.com/datajetty/webhooks/shared/wiring/coldstart"
	"github.com/datajetty/webhooks/shared/wiring/withkms"
	"github.com/datajetty/webhooks/shared/wiring/withsecrets"
	"github.com/datajetty/webhooks/shared/wiring/withsqs"
	"github.com/datajetty/webhooks/shared/wiring/workerfn"
)

// Services are all the AWS services the functions call, besides DynamoDB and SQS.
var Services = coldstart.Merge(withkms.Services, withsqs.Services, withsecrets.Services)

// APIOptions tunes the API handler (apifn.Options).
type APIOptions = apifn.Options

// WorkerOptions are what the queue consumers share besides configuration
// (workerfn.Options).
type WorkerOptions = workerfn.Options

// Shutdown is the work queue consumers leave for the end of their instance.
type Shutdown = workerfn.Shutdown

// SQSHandler is a queue consumer's Lambda handler.
type SQSHandler = workerfn.SQSHandler

// LoadAWS builds the SDK configuration from the environment, as the functions do
// (coldstart.LoadAWS).
func LoadAWS(ctx context.Context) (aws.Config, error) { return coldstart.LoadAWS(ctx) }

// API builds the API handler serving the named routes (every route when none are named).
func API(ctx context.Context, cfg config.Config, awsCfg aws.Config, opts APIOptions, routes ...string) (*api.Handler, error) {
	return apifn.API(ctx, cfg, awsCfg, opts, Services, routes...)
}

// Ingest builds the IngestQueue consumer.
func Ingest(cfg config.Config, awsCfg aws.Config, o WorkerOptions) (SQSHandler, error) {
	return workerfn.Ingest(cfg, awsCfg, o, Services)
}

// ReplayWorker builds the ReplayQueue consumer.
func ReplayWorker(cfg config.Config, awsCfg aws.Config, o WorkerOptions) (SQSHandler, error) {
	return workerfn.ReplayWorker(cfg, awsCfg, o, Services)
}

// Deliver builds the DeliveryQueue consumer.
func Deliver(cfg config.Config, awsCfg aws.Config, o WorkerOptions) (SQSHandler, error) {
	return workerfn.Deliver(cfg, awsCfg, o, Services)
}
