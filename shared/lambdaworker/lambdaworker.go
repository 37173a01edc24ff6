// Package lambdaworker is the cold start of the queue-consumer functions: configuration
// read and checked once, AWS clients and adapters built once (shared/wiring), then the
// Lambda loop with the SQS handler.
package lambdaworker

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/metrics"
	"github.com/datajetty/webhooks/shared/wiring"
)

// Builder builds a consumer from configuration (wiring.Ingest, wiring.Deliver, …).
type Builder func(config.Config, aws.Config, wiring.WorkerOptions) (wiring.SQSHandler, error)

// Run starts the named consumer; a bad configuration fails the cold start with the
// missing variable's name in the log. name is also the metrics' Function dimension.
func Run(name string, build Builder) {
	logger := lambdacontext.NewLogger()
	slog.SetDefault(logger)
	cfg, err := config.FromEnv()
	if err != nil {
		logger.Error("invalid configuration", "error", err)
		os.Exit(1)
	}
	awsCfg, err := wiring.LoadAWS(context.Background())
	if err != nil {
		logger.Error("AWS configuration", "error", err)
		os.Exit(1)
	}
	h, err := build(cfg, awsCfg, wiring.WorkerOptions{Logger: logger, Metrics: metrics.New(os.Stdout, name)})
	if err != nil {
		logger.Error("cold start failed", "function", name, "error", err)
		os.Exit(1)
	}
	lambda.Start(h)
}
