// Package coldstart is the cold start every Lambda function shares (shared/lambdaapi,
// shared/lambdaworker): the logger, the configuration, the AWS configuration, then the
// function's own builder. It links no AWS service client: each function's builder
// (shared/wiring/apifn, shared/wiring/workerfn) links DynamoDB and SQS as it needs them, and
// takes the other services it calls as Services (shared/wiring/withkms, withsqs,
// withsecrets), so a function's binary links and initialises only the SDK clients it uses.
package coldstart

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/config"
)

// Boot is what a function's cold start hands its builder.
type Boot struct {
	Config config.Config
	AWS    aws.Config
	Logger *slog.Logger
}

// Function is one Lambda function's cold start: its name, logged with a failed cold start,
// and the builder of its handler.
type Function[H any] struct {
	// Name is the route (API functions) or the consumer (queue functions).
	Name string
	// NameKey is the log attribute that carries Name: "route" or "function".
	NameKey string
	Build   func(context.Context, Boot) (H, error)
}

// Run is the cold start of fn: the JSON logger that adds the request id becomes the
// default, the configuration is read and checked once, the AWS SDK configuration built
// once, then fn.Build makes the handler. A failure is logged at ERROR ("invalid
// configuration", "AWS configuration" or "cold start failed", with the function's name and
// the error) and ends the process, so Lambda reports a failed init whose log names the
// cause (docs/runbook.md).
func Run[H any](fn Function[H]) H {
	logger := lambdacontext.NewLogger()
	slog.SetDefault(logger)
	h, stage, err := run(context.Background(), logger, config.FromEnv, fn.Build)
	if err != nil {
		logger.Error(stage, fn.NameKey, fn.Name, "error", err)
		os.Exit(1)
	}
	return h
}

// run runs the steps of Run and names the one that failed.
func run[H any](ctx context.Context, logger *slog.Logger, readConfig func() (config.Config, error), build func(context.Context, Boot) (H, error)) (h H, stage string, err error) {
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

// LoadAWS builds the SDK configuration from the environment Lambda gives every function:
// the region (AWS_REGION, else AWS_DEFAULT_REGION), the execution role's credentials
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) and, locally,
// AWS_ENDPOINT_URL, which points every client at the emulator; 3 attempts per call. It
// reads no file and makes no call.
//
// It replaces the SDK's config.LoadDefaultConfig, which looks for credentials in shared
// files, SSO, STS web identity, container and instance metadata as well: sources a Lambda
// function never uses, whose packages alone took about 2 ms of every cold start to
// initialise. (Tools that act as a person against a real account, make redrive AWS=1, use
// LoadDefaultConfig and its profiles.)
func LoadAWS(context.Context) (aws.Config, error) {
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = os.Getenv("AWS_DEFAULT_REGION")
	}
	id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	var missing []error
	if region == "" {
		missing = append(missing, errors.New("AWS_REGION is not set"))
	}
	if id == "" || secret == "" {
		missing = append(missing, errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"))
	}
	if err := errors.Join(missing...); err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config from the environment (Lambda sets these): %w", err)
	}
	creds := credentials.NewStaticCredentialsProvider(id, secret, os.Getenv("AWS_SESSION_TOKEN"))
	creds.Value.AccountID = os.Getenv("AWS_ACCOUNT_ID")
	cfg := aws.Config{
		Region:           region,
		Credentials:      aws.NewCredentialsCache(creds),
		HTTPClient:       awshttp.NewBuildableClient(),
		RetryMaxAttempts: 3,
	}
	if u := config.AWSEndpointURL.Get(); u != "" {
		cfg.BaseEndpoint = aws.String(u)
	}
	return cfg, nil
}

// Services are the AWS services besides DynamoDB and SQS that a function may call, each
// as the constructor of the adapter that calls it. A function's entry point passes the ones
// it uses (withkms.Services, withsqs.Services, withsecrets.Services), so its binary links
// no other service's SDK package; a builder that needs one it was not given fails the cold
// start, naming it.
type Services struct {
	// SecretBox seals and opens endpoints' signing secrets with the KMS key keyID.
	SecretBox func(cfg aws.Config, keyID string) app.SecretBox
	// ReplayQueue hands replays to the ReplayQueue at queueURL (the API's POST /replay).
	ReplayQueue func(cfg aws.Config, queueURL string) app.ReplayQueue
	// DeliveryQueue enqueues delivery jobs on the DeliveryQueue at queueURL (the API's
	// resend).
	DeliveryQueue func(cfg aws.Config, queueURL string) app.JobQueue
	// ServiceEvents publishes the service's notifications about endpoints to the
	// IngestQueue at queueURL (the API's disable).
	ServiceEvents func(cfg aws.Config, queueURL string) app.Notifier
	// ReadSecret reads a Secrets Manager secret's string value.
	ReadSecret func(ctx context.Context, cfg aws.Config, arn string) (string, error)
}

// Merge combines services: a constructor set in any of them is set in the result.
func Merge(ss ...Services) Services {
	var out Services
	for _, s := range ss {
		if s.SecretBox != nil {
			out.SecretBox = s.SecretBox
		}
		if s.ReplayQueue != nil {
			out.ReplayQueue = s.ReplayQueue
		}
		if s.DeliveryQueue != nil {
			out.DeliveryQueue = s.DeliveryQueue
		}
		if s.ServiceEvents != nil {
			out.ServiceEvents = s.ServiceEvents
		}
		if s.ReadSecret != nil {
			out.ReadSecret = s.ReadSecret
		}
	}
	return out
}
