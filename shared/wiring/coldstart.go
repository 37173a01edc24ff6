package wiring

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/datajetty/webhooks/shared/config"
)

// Boot is what a function's cold start hands its builder.
type Boot struct {
	Config config.Config
	AWS    aws.Config
	Logger *slog.Logger
}

// ColdStart is the cold start every Lambda function shares (shared/lambdaapi,
// shared/lambdaworker): the JSON logger that adds the request id becomes the default, the
// configuration is read and checked once, the AWS SDK configuration loaded once, then
// build makes the handler. A failure is logged at ERROR ("invalid configuration", "AWS
// configuration" or "cold start failed", with attrs and the error) and ends the process,
// so Lambda reports a failed init whose log names the cause (docs/runbook.md).
func ColdStart[H any](build func(context.Context, Boot) (H, error), attrs ...any) H {
	logger := lambdacontext.NewLogger()
	slog.SetDefault(logger)
	h, stage, err := coldStart(context.Background(), logger, config.FromEnv, build)
	if err != nil {
		logger.Error(stage, append(attrs, "error", err)...)
		os.Exit(1)
	}
	return h
}

// coldStart runs the steps of ColdStart and names the one that failed.
func coldStart[H any](ctx context.Context, logger *slog.Logger, readConfig func() (config.Config, error), build func(context.Context, Boot) (H, error)) (h H, stage string, err error) {
	cfg, err := readConfig()
	if err != nil {
		return h, "invalid configuration", err
	}
	awsCfg, err := LoadAWS(ctx)
	if err != nil {
		return h, "AWS configuration", err
	}
	h, err = build(ctx, Boot{Config: cfg, AWS: awsCfg, Logger: logger})
	if err != nil {
		return h, "cold start failed", err
	}
	return h, "", nil
}
