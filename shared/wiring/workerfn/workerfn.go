// Package workerfn wires the queue-consumer functions (ingest, deliver, replay worker) on the
// DynamoDB and SQS adapters, and on the Services their entry points pass (KMS for
// deliver). The local server and the tests build them too, with every service
// (shared/wiring).
package workerfn

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/delivery"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/ingest"
	"github.com/datajetty/webhooks/shared/metrics"
	"github.com/datajetty/webhooks/shared/queue"
	"github.com/datajetty/webhooks/shared/replayworker"
	"github.com/datajetty/webhooks/shared/ssrf"
	"github.com/datajetty/webhooks/shared/store"
	"github.com/datajetty/webhooks/shared/wiring/coldstart"
)

// The settings each consumer needs, so a function with a missing variable fails at cold
// start with the variable's name.
var (
	IngestNeeds       = []config.Var{config.EventsTable, config.EndpointsTable, config.DeliveriesTable, config.DeliveryQueueURL, config.IngestDLQURL}
	ReplayWorkerNeeds = []config.Var{config.ReplaysTable, config.EndpointsTable, config.EventsTable, config.DeliveriesTable, config.DeliveryQueueURL, config.ReplayQueueURL}
	DeliverNeeds      = []config.Var{config.EndpointsTable, config.DeliveriesTable, config.DeliveryQueueURL, config.IngestQueueURL, config.SecretsKeyID}
)

// SQSHandler is a queue consumer's Lambda handler.
type SQSHandler func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// Options are what the queue consumers share besides configuration.
type Options struct {
	Logger  *slog.Logger
	Metrics *metrics.Emitter
	// Now is the deliver function's clock (time.Now when nil): attempt times, signatures'
	// timestamps, the endpoint cache. The cost measurement runs it on a simulated clock.
	Now func() time.Time
	// TuneDelivery, when set, adjusts the deliver function's options after the production
	// defaults: end-to-end tests shorten the retry schedule and the endpoint cache with it
	// to walk hours of a tenant's day in seconds. The functions never set it.
	TuneDelivery func(*delivery.Options)
	// Shutdown, when set, collects what the consumer must do before its instance ends
	// (the deliver function's waiting watermarks); the Lambda entry path runs it on SIGTERM.
	Shutdown *Shutdown
}

// Shutdown is the work consumers leave for the end of their instance.
type Shutdown struct {
	mu    sync.Mutex
	hooks []func(context.Context)
}

// Add registers f to run at shutdown.
func (s *Shutdown) Add(f func(context.Context)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = append(s.hooks, f)
}

// Run runs every registered hook, in order, within ctx.
func (s *Shutdown) Run(ctx context.Context) {
	s.mu.Lock()
	hooks := append([]func(context.Context){}, s.hooks...)
	s.mu.Unlock()
	for _, f := range hooks {
		f(ctx)
	}
}

// Len is the number of registered hooks.
func (s *Shutdown) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hooks)
}

type shutdownKey struct{}

// WithShutdown returns ctx carrying s: a consumer that a Function builds with it registers
// its shutdown work with s (the Lambda entry path runs s on SIGTERM).
func WithShutdown(ctx context.Context, s *Shutdown) context.Context {
	return context.WithValue(ctx, shutdownKey{}, s)
}

func (o Options) logger() *slog.Logger {
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
// after each batch. This is the only place a consumer's metrics are flushed. A handler with
// a Flush method has it registered with o.Shutdown.
func consumer[D any, H batchHandler](newHandler func(D) (H, error), d D, o Options) (SQSHandler, error) {
	h, err := newHandler(d)
	if err != nil {
		return nil, err
	}
	if f, ok := any(h).(interface{ Flush(context.Context) }); ok && o.Shutdown != nil {
		o.Shutdown.Add(f.Flush)
	}
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		resp, err := h.Handle(ctx, ev)
		if ferr := o.Metrics.Flush(); ferr != nil {
			o.logger().WarnContext(ctx, "writing metrics failed", "error", ferr)
		}
		return resp, err
	}, nil
}

// Builder builds a consumer from configuration and the services its entry point passes.
type Builder func(cfg config.Config, awsCfg aws.Config, o Options, svc coldstart.Services) (SQSHandler, error)

// Function is the Lambda function of the consumer name (also its metrics' Function
// dimension), built by build with the services its entry point passes, and with the
// Shutdown the build context carries (WithShutdown), if any.
func Function(name string, build Builder, services ...coldstart.Services) coldstart.Function[SQSHandler] {
	svc := coldstart.Merge(services...)
	return coldstart.Function[SQSHandler]{Name: name, NameKey: "function", Build: func(ctx context.Context, b coldstart.Boot) (SQSHandler, error) {
		sd, _ := ctx.Value(shutdownKey{}).(*Shutdown)
		return build(b.Config, b.AWS, Options{Logger: b.Logger, Metrics: metrics.New(os.Stdout, name), Shutdown: sd}, svc)
	}}
}

// Ingest builds the IngestQueue consumer.
func Ingest(cfg config.Config, awsCfg aws.Config, o Options, _ coldstart.Services) (SQSHandler, error) {
	if err := cfg.Require(IngestNeeds...); err != nil {
		return nil, err
	}
	db, q := dynamodb.NewFromConfig(awsCfg), sqs.NewFromConfig(awsCfg)
	return consumer(ingest.New, ingest.Deps{
		Events:      store.NewEvents(db, cfg.EventsTable),
		Endpoints:   store.NewEndpoints(db, cfg.EndpointsTable),
		Jobs:        queue.NewDeliveryJobs(q, cfg.DeliveryQueueURL),
		DeadLetters: queue.NewDeadLetters(q, cfg.IngestDLQURL),
		Skips:       store.NewDeliveries(db, cfg.DeliveriesTable),
		Logger:      o.logger(),
		Metrics:     o.Metrics,
	}, o)
}

// ReplayWorker builds the ReplayQueue consumer.
func ReplayWorker(cfg config.Config, awsCfg aws.Config, o Options, _ coldstart.Services) (SQSHandler, error) {
	if err := cfg.Require(ReplayWorkerNeeds...); err != nil {
		return nil, err
	}
	db, q := dynamodb.NewFromConfig(awsCfg), sqs.NewFromConfig(awsCfg)
	events := store.NewEvents(db, cfg.EventsTable)
	return consumer(replayworker.New, replayworker.Deps{
		Replays:   store.NewReplays(db, cfg.ReplaysTable, cfg.EndpointsTable),
		Endpoints: store.NewEndpoints(db, cfg.EndpointsTable),
		Events:    events,
		Failed:    store.NewRecovery(store.NewDeliveries(db, cfg.DeliveriesTable), events),
		Jobs:      queue.NewDeliveryJobs(q, cfg.DeliveryQueueURL),
		Continuer: queue.NewReplayJobs(q, cfg.ReplayQueueURL),
		Logger:    o.logger(),
		Metrics:   o.Metrics,
	}, o)
}

// Deliver builds the DeliveryQueue consumer; it opens signing secrets with KMS
// (withkms.Services). Its HTTP client carries the SSRF guard (private destinations only
// when WEBHOOKS_ALLOW_PRIVATE_TARGETS is true, locally).
func Deliver(cfg config.Config, awsCfg aws.Config, o Options, svc coldstart.Services) (SQSHandler, error) {
	if err := cfg.Require(DeliverNeeds...); err != nil {
		return nil, err
	}
	if svc.SecretBox == nil {
		return nil, errors.New("deliver needs KMS (withkms.Services)")
	}
	db, q := dynamodb.NewFromConfig(awsCfg), sqs.NewFromConfig(awsCfg)
	endpoints := store.NewEndpoints(db, cfg.EndpointsTable)
	opts := delivery.DefaultOptions()
	opts.UserAgent = domain.UserAgent
	if o.TuneDelivery != nil {
		o.TuneDelivery(&opts)
	}
	return consumer(delivery.New, delivery.Deps{
		Endpoints:  endpoints,
		State:      endpoints,
		Secrets:    svc.SecretBox(awsCfg, cfg.SecretsKeyID),
		Log:        store.NewDeliveries(db, cfg.DeliveriesTable),
		Visibility: queue.NewVisibility(q, cfg.DeliveryQueueURL),
		Notifier:   queue.NewServiceEvents(q, cfg.IngestQueueURL),
		Client:     ssrf.NewClient(ssrf.Policy{AllowPrivate: cfg.AllowPrivateTargets}, opts.AttemptTimeout),
		Logger:     o.logger(),
		Metrics:    o.Metrics,
		Now:        o.Now,
		Options:    opts,
	}, o)
}
