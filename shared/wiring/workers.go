package wiring

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/delivery"
	"github.com/datajetty/webhooks/shared/ingest"
	"github.com/datajetty/webhooks/shared/kmssecrets"
	"github.com/datajetty/webhooks/shared/metrics"
	"github.com/datajetty/webhooks/shared/queue"
	"github.com/datajetty/webhooks/shared/replayworker"
	"github.com/datajetty/webhooks/shared/ssrf"
	"github.com/datajetty/webhooks/shared/store"
)

// The settings each consumer needs, so a function with a missing variable fails at cold
// start with the variable's name.
var (
	ingestNeeds       = []config.Var{config.EventsTable, config.EndpointsTable, config.DeliveryQueueURL, config.IngestDLQURL}
	replayWorkerNeeds = []config.Var{config.ReplaysTable, config.EndpointsTable, config.EventsTable, config.DeliveryQueueURL, config.ReplayQueueURL}
	deliverNeeds      = []config.Var{config.EndpointsTable, config.DeliveriesTable, config.DeliveryQueueURL, config.SecretsKeyID}
)

// SQSHandler is a queue consumer's Lambda handler.
type SQSHandler func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// WorkerOptions are what the queue consumers share besides configuration.
type WorkerOptions struct {
	Logger  *slog.Logger
	Metrics *metrics.Emitter
	// Now is the deliver function's clock (time.Now when nil): attempt times, signatures'
	// timestamps, the endpoint cache. The cost measurement runs it on a simulated clock.
	Now func() time.Time
}

func (o WorkerOptions) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.Default()
	}
	return o.Logger
}

// batchHandler is what every queue consumer's package builds with New(Deps) (*Handler,
// error), which checks the dependencies and options at cold start.
type batchHandler interface {
	Handle(context.Context, events.SQSEvent) (events.SQSEventResponse, error)
}

// consumer builds a queue consumer the one way all three are built: its package's New
// checks d, and the returned handler writes the metrics the batch recorded (one EMF line)
// after each batch. This is the only place a consumer's metrics are flushed.
func consumer[D any, H batchHandler](newHandler func(D) (H, error), d D, o WorkerOptions) (SQSHandler, error) {
	h, err := newHandler(d)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		resp, err := h.Handle(ctx, ev)
		if ferr := o.Metrics.Flush(); ferr != nil {
			o.logger().WarnContext(ctx, "writing metrics failed", "error", ferr)
		}
		return resp, err
	}, nil
}

// Ingest builds the IngestQueue consumer.
func Ingest(cfg config.Config, awsCfg aws.Config, o WorkerOptions) (SQSHandler, error) {
	if err := cfg.Require(ingestNeeds...); err != nil {
		return nil, err
	}
	db, q := dynamodb.NewFromConfig(awsCfg), sqs.NewFromConfig(awsCfg)
	return consumer(ingest.New, ingest.Deps{
		Events:      store.NewEvents(db, cfg.EventsTable),
		Endpoints:   store.NewEndpoints(db, cfg.EndpointsTable),
		Jobs:        queue.NewDeliveryJobs(q, cfg.DeliveryQueueURL),
		DeadLetters: queue.NewDeadLetters(q, cfg.IngestDLQURL),
		Logger:      o.logger(),
		Metrics:     o.Metrics,
	}, o)
}

// ReplayWorker builds the ReplayQueue consumer.
func ReplayWorker(cfg config.Config, awsCfg aws.Config, o WorkerOptions) (SQSHandler, error) {
	if err := cfg.Require(replayWorkerNeeds...); err != nil {
		return nil, err
	}
	db, q := dynamodb.NewFromConfig(awsCfg), sqs.NewFromConfig(awsCfg)
	return consumer(replayworker.New, replayworker.Deps{
		Replays:   store.NewReplays(db, cfg.ReplaysTable, cfg.EndpointsTable),
		Endpoints: store.NewEndpoints(db, cfg.EndpointsTable),
		Events:    store.NewEvents(db, cfg.EventsTable),
		Jobs:      queue.NewDeliveryJobs(q, cfg.DeliveryQueueURL),
		Continuer: queue.NewReplayJobs(q, cfg.ReplayQueueURL),
		Logger:    o.logger(),
		Metrics:   o.Metrics,
	}, o)
}

// Deliver builds the DeliveryQueue consumer. Its HTTP client carries the SSRF guard
// (private destinations only when WEBHOOKS_ALLOW_PRIVATE_TARGETS is true, locally).
func Deliver(cfg config.Config, awsCfg aws.Config, o WorkerOptions) (SQSHandler, error) {
	if err := cfg.Require(deliverNeeds...); err != nil {
		return nil, err
	}
	db := dynamodb.NewFromConfig(awsCfg)
	endpoints := store.NewEndpoints(db, cfg.EndpointsTable)
	opts := delivery.DefaultOptions()
	opts.UserAgent = UserAgent
	return consumer(delivery.New, delivery.Deps{
		Endpoints:  endpoints,
		State:      endpoints,
		Secrets:    kmssecrets.New(kms.NewFromConfig(awsCfg), cfg.SecretsKeyID),
		Log:        store.NewDeliveries(db, cfg.DeliveriesTable),
		Visibility: queue.NewVisibility(sqs.NewFromConfig(awsCfg), cfg.DeliveryQueueURL),
		Client:     ssrf.NewClient(ssrf.Policy{AllowPrivate: cfg.AllowPrivateTargets}, opts.AttemptTimeout),
		Logger:     o.logger(),
		Metrics:    o.Metrics,
		Now:        o.Now,
		Options:    opts,
	}, o)
}
