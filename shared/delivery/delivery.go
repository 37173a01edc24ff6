// Package delivery is the deliver function's handler: it turns DeliveryQueue messages into
// signed Standard Webhooks POSTs to tenants' endpoints and schedules the retries.
//
// Retries are SQS's: a failed message is reported as a batch item failure after its
// visibility timeout was set to the next backoff, so the same message comes back when the
// retry is due and its ApproximateReceiveCount is the attempt number. After the last
// attempt the message is made visible at once, and the queue's redrive policy
// (maxReceiveCount = MaxAttempts) moves it to the dead-letter queue on the next receive.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/metrics"
	"github.com/datajetty/webhooks/shared/queue"
	"github.com/datajetty/webhooks/shared/sender"
	"github.com/datajetty/webhooks/shared/signing"
)

// EndpointSource loads endpoints (shared/store.Endpoints).
type EndpointSource interface {
	// GetEndpoint loads one endpoint; an error matching domain.ErrNotFound if absent.
	GetEndpoint(ctx context.Context, tenantID, endpointID string) (domain.Endpoint, error)
}

// SecretOpener decrypts signing secrets (shared/kmssecrets.Box).
type SecretOpener interface {
	Open(ctx context.Context, tenantID, endpointID string, ciphertext []byte) (signing.Secret, error)
}

// AttemptLog stores delivery attempts (shared/store.Deliveries).
type AttemptLog interface {
	Record(ctx context.Context, attempts []domain.Attempt) error
}

// EndpointState is the delivery side's writes to endpoints (shared/store.Endpoints).
type EndpointState interface {
	// AdvanceWatermark moves the watermark forward to `to` (never back) and ends the
	// endpoint's streak of exhausted deliveries and its failing state; recovered is the
	// endpoint as it was, for the one call that ended a failing state (else nil).
	AdvanceWatermark(ctx context.Context, tenantID, endpointID string, to time.Time) (recovered *domain.Endpoint, err error)
	// Disable marks the endpoint disabled with reason and detail, returning it as it is
	// after the call and whether this call disabled it; domain.ErrNotFound when it is gone.
	Disable(ctx context.Context, tenantID, endpointID string, reason domain.DisabledReason, detail string, now time.Time) (domain.Endpoint, bool, error)
	// RecordExhausted counts a delivery that exhausted its retries, marks the endpoint
	// failing at the first of a streak and disables it when threshold consecutive ones did,
	// reporting what this call changed.
	RecordExhausted(ctx context.Context, tenantID, endpointID string, threshold int, now time.Time) (domain.Exhausted, error)
}

// Notifier publishes the service's notifications about endpoints to the IngestQueue
// (shared/queue.ServiceEvents), once per change of an endpoint's state.
type Notifier interface {
	Publish(ctx context.Context, e domain.Event) error
}

// Visibility sets when a received message comes back (shared/queue.Visibility).
type Visibility interface {
	ChangeVisibility(ctx context.Context, receiptHandle string, delay time.Duration) error
}

// Options tunes delivery. DefaultOptions holds the documented production values.
type Options struct {
	// AttemptTimeout bounds one POST, from dialling to the response headers.
	AttemptTimeout time.Duration
	// Schedule[i] is the delay after failed attempt i+1 (the last entry repeats if the
	// schedule is shorter than MaxAttempts-1).
	Schedule []time.Duration
	// Jitter spreads each scheduled delay uniformly over ±Jitter of it, so that retries of
	// an endpoint that failed a burst do not all come back in the same second.
	Jitter float64
	// MaxAttempts is the attempt after which a failed delivery is dead. It must equal the
	// queue's redrive maxReceiveCount.
	MaxAttempts int
	// CacheTTL is how long an instance reuses an endpoint's configuration: a tenant's change
	// (new URL, rotated secret, disabling) takes effect within it.
	CacheTTL time.Duration
	// WatermarkEvery is the least time between two watermark writes of one endpoint by one
	// instance; successes in between wait for the next write (0: every batch writes).
	WatermarkEvery time.Duration
	// SecretCacheTTL is how long an instance keeps a signing secret it decrypted, keyed by
	// its ciphertext, so re-reading the endpoint does not decrypt it again (0: no reuse
	// beyond CacheTTL).
	SecretCacheTTL time.Duration
	// AutoDisableThreshold is the number of consecutive deliveries exhausting every retry
	// after which the endpoint is disabled.
	AutoDisableThreshold int
	// MaxResponseBytes caps how much of a response body is read (and discarded).
	MaxResponseBytes int64
	// UserAgent is sent with every delivery.
	UserAgent string
}

// DefaultOptions returns the production settings: 15 s attempts, retries after 5 s, 5 min,
// 30 min, 2 h, 5 h, 10 h and 10 h (±20 %), so 8 attempts over about 28 hours; a 30 s
// endpoint cache and decrypted secrets kept 15 min; a watermark written at most every 5 s
// per endpoint and instance; auto-disable after 5 consecutive exhausted deliveries; 64 KiB
// of body.
func DefaultOptions() Options {
	return Options{
		AttemptTimeout: sender.DefaultTimeout,
		Schedule: []time.Duration{
			5 * time.Second, 5 * time.Minute, 30 * time.Minute,
			2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
		},
		Jitter:               0.2,
		MaxAttempts:          8,
		CacheTTL:             domain.ConfigPropagation,
		SecretCacheTTL:       15 * time.Minute,
		WatermarkEvery:       5 * time.Second,
		AutoDisableThreshold: 5,
		MaxResponseBytes:     sender.DefaultMaxResponseBytes,
		UserAgent:            "DataJetty-Webhooks/1.0",
	}
}

func (o Options) validate() error {
	var errs []error
	if o.AttemptTimeout <= 0 {
		errs = append(errs, errors.New("attempt timeout must be positive"))
	}
	if o.MaxAttempts < 1 {
		errs = append(errs, errors.New("max attempts must be at least 1"))
	}
	if o.MaxAttempts > 1 && len(o.Schedule) == 0 {
		errs = append(errs, errors.New("schedule must not be empty when retries are allowed"))
	}
	for _, d := range o.Schedule {
		if d < 0 || d > maxDelay {
			errs = append(errs, fmt.Errorf("schedule entry %s is outside 0..%s", d, maxDelay))
		}
	}
	if o.Jitter < 0 || o.Jitter >= 1 {
		errs = append(errs, errors.New("jitter must be in [0, 1)"))
	}
	if o.CacheTTL < 0 || o.SecretCacheTTL < 0 || o.WatermarkEvery < 0 {
		errs = append(errs, errors.New("cache TTLs and the watermark period must not be negative"))
	}
	if o.AutoDisableThreshold < 1 {
		errs = append(errs, errors.New("auto-disable threshold must be at least 1"))
	}
	if o.MaxResponseBytes < 0 {
		errs = append(errs, errors.New("max response bytes must not be negative"))
	}
	if o.UserAgent == "" {
		errs = append(errs, errors.New("user agent is required"))
	}
	return errors.Join(errs...)
}

// Deps is everything a Handler needs. Metrics, Now, Rand and Logger are optional.
type Deps struct {
	Endpoints  EndpointSource
	Secrets    SecretOpener
	Log        AttemptLog
	State      EndpointState
	Visibility Visibility
	// Notifier publishes webhooks.endpoint.disabled, .failing and .recovered (nil: none, for
	// tests of other behaviour; the deliver function always has one).
	Notifier Notifier
	// Client makes the POSTs. In production ssrf.NewClient: the destination is checked at
	// dial time and redirects are not followed. One client per instance, so connections
	// to busy endpoints are kept alive and reused across batches.
	Client *http.Client
	// Metrics counts deliveries by outcome, their latency, retries and auto-disabled
	// endpoints (nil: none).
	Metrics *metrics.Emitter
	// Now is the clock of attempt times and webhook-timestamp (time.Now by default).
	Now func() time.Time
	// Rand returns a uniform number in [0, 1) for the jitter (math/rand/v2 by default).
	// It is called concurrently.
	Rand    func() float64
	Logger  *slog.Logger
	Options Options
}

// Handler delivers DeliveryQueue batches. It is safe for concurrent invocations; build one
// per instance, at cold start.
type Handler struct {
	endpoints  EndpointSource
	secrets    SecretOpener
	log        AttemptLog
	state      EndpointState
	visibility Visibility
	notifier   Notifier
	sender     Sender
	metrics    *metrics.Emitter
	now        func() time.Time
	rand       func() float64
	logger     *slog.Logger
	opts       Options
	cache      *targetCache
	secretsMem *secretCache
	marks      *watermarks
	lagAfter   time.Duration // laggingAfter; tests lengthen it so a loaded machine cannot split a batch
}

// New checks d and its options and returns a Handler; build one per instance, at cold start.
func New(d Deps) (*Handler, error) {
	if d.Endpoints == nil || d.Secrets == nil || d.Log == nil || d.State == nil || d.Visibility == nil || d.Client == nil {
		return nil, errors.New("delivery: Deps needs Endpoints, Secrets, Log, State, Visibility and Client")
	}
	if err := d.Options.validate(); err != nil {
		return nil, fmt.Errorf("delivery: options: %w", err)
	}
	h := &Handler{
		endpoints: d.Endpoints, secrets: d.Secrets, log: d.Log, state: d.State,
		visibility: d.Visibility, notifier: d.Notifier, metrics: d.Metrics,
		sender: Sender{Client: d.Client, UserAgent: d.Options.UserAgent, MaxResponseBytes: d.Options.MaxResponseBytes},
		now:    d.Now, rand: d.Rand, logger: d.Logger, opts: d.Options,
		cache: newTargetCache(d.Options.CacheTTL), secretsMem: newSecretCache(d.Options.SecretCacheTTL),
		marks: newWatermarks(d.Options.WatermarkEvery), lagAfter: laggingAfter,
	}
	h.opts.Schedule = append([]time.Duration(nil), d.Options.Schedule...)
	if h.now == nil {
		h.now = time.Now
	}
	if h.rand == nil {
		h.rand = rand.Float64
	}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	return h, nil
}

// Handle delivers every message of the batch concurrently and reports the ones to retry
// (or dead-letter) as batch item failures. It never returns an error: a failure of the
// whole invocation would retry the messages that were delivered too. Every attempt is
// logged before Handle returns, that is before Lambda acknowledges its message (record).
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	outcomes := make([]outcome, len(ev.Records))
	done := make(chan int, len(ev.Records))
	for i := range ev.Records {
		go func() {
			outcomes[i] = h.deliver(ctx, &ev.Records[i])
			done <- i
		}()
	}
	h.record(ctx, ev.Records, outcomes, done)

	var resp events.SQSEventResponse
	for i, o := range outcomes {
		if !o.ack {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
		}
	}
	return resp, nil
}

// laggingAfter is how long the deliveries of a batch still running may lag behind the ones
// done before those are written without waiting for them. Deliveries that end together
// (a batch for one receiver, or receivers alike, an endpoint loaded from DynamoDB and KMS
// first) are written once, after the last; a slow receiver (seconds, up to the attempt
// timeout) no longer keeps the others out of the delivery log and their watermarks back
// until its POST ends. The lag is read on the handler's clock (Deps.Now), as its cache and
// watermark periods are: on a simulated clock that stands still during a batch (make cost)
// deliveries always end together.
const laggingAfter = 100 * time.Millisecond

// record writes the batch's attempts and hands its successes to the watermarks as the
// deliveries end (done receives each message's index once its outcome is set). When the
// deliveries still running lag laggingAfter behind, the outcomes done so far are written
// at once, while the laggards' POSTs go on, and the newest success of every endpoint none
// of whose messages is still running goes to the watermarks, which write it then if it is
// due; everything else follows the last delivery. So a batch makes at most two attempt-log
// writes and hands each endpoint's newest success to the watermarks once. record returns
// when every write has ended: every attempt is logged before its message is acknowledged.
func (h *Handler) record(ctx context.Context, msgs []events.SQSMessage, outcomes []outcome, done <-chan int) {
	running := map[endpointKey]int{} // messages still being delivered, per endpoint
	keys := make([]endpointKey, len(msgs))
	for i := range msgs {
		keys[i] = endpointKey{jobAttr(&msgs[i], queue.JobAttrTenantID), jobAttr(&msgs[i], queue.JobAttrEndpointID)}
		running[keys[i]]++
	}
	var (
		left     = len(msgs)
		ready    []int // done, not written
		advanced = map[endpointKey]bool{}
		early    sync.WaitGroup
		lastDone time.Time // on h.now
		lag      *time.Timer
		lagging  <-chan time.Time
	)
	for left > 0 {
		select {
		case i := <-done:
			left--
			running[keys[i]]--
			ready = append(ready, i)
			lastDone = h.now()
			if lag == nil && left > 0 {
				lag = time.NewTimer(h.lagAfter)
				lagging = lag.C
			} else if lagging != nil {
				lag.Reset(h.lagAfter)
			}
		case <-lagging:
			if h.now().Sub(lastDone) < h.lagAfter { // the handler's clock has not moved as far
				lag.Reset(h.lagAfter)
				continue
			}
			lagging = nil // once per batch
			attempts, marks := h.written(outcomes, ready, func(k endpointKey) bool {
				if running[k] > 0 {
					return false
				}
				advanced[k] = true
				return true
			})
			ready = nil
			early.Go(func() { h.finish(ctx, attempts, marks) })
		}
	}
	if lag != nil {
		lag.Stop()
	}
	all := make([]int, len(outcomes))
	for i := range all {
		all[i] = i
	}
	attempts, _ := h.written(outcomes, ready, func(endpointKey) bool { return false })
	_, marks := h.written(outcomes, all, func(k endpointKey) bool { return !advanced[k] })
	// The early write has ended before the last one starts (it began at least laggingAfter
	// ago, so this rarely waits): items with the same key in both, such as an event's index
	// entry when a duplicate message of it is in the batch, end as the later outcome wrote
	// them, as within one BatchWriteItem the last wins.
	early.Wait()
	h.finish(ctx, attempts, marks)
}

// jobAttr reads a String message attribute of a delivery job ("" when absent).
func jobAttr(m *events.SQSMessage, name string) string {
	if a, ok := m.MessageAttributes[name]; ok && a.StringValue != nil {
		return *a.StringValue
	}
	return ""
}

// written returns the attempts of the outcomes at idx, and the newest success of each of
// their endpoints for which advance says so.
func (h *Handler) written(outcomes []outcome, idx []int, advance func(endpointKey) bool) ([]domain.Attempt, map[endpointKey]time.Time) {
	var attempts []domain.Attempt
	marks := map[endpointKey]time.Time{}
	asked := map[endpointKey]bool{}
	for _, i := range idx {
		a := outcomes[i].attempt
		if a == nil {
			continue
		}
		attempts = append(attempts, *a)
		if a.Status != domain.DeliverySucceeded {
			continue
		}
		k := endpointKey{a.TenantID, a.EndpointID}
		ok, seen := asked[k]
		if !seen {
			ok = advance(k)
			asked[k] = ok
		}
		if ok && a.OccurredAt.After(marks[k]) {
			marks[k] = a.OccurredAt
		}
	}
	return attempts, marks
}

// finish stores attempts with one AttemptLog call (one DynamoDB write per delivery,
// batched), hands the newest successes in marks to the watermarks and writes the ones that
// are due (see watermarks), all concurrently.
//
// Failures here are logged and do not fail any message: the deliveries already happened,
// and reporting a delivered message as failed would POST it again. A duplicate webhook is
// worse for the receiver than a missing line in the delivery log or a watermark that lags
// (which only makes a replay start a little earlier).
func (h *Handler) finish(ctx context.Context, attempts []domain.Attempt, marks map[endpointKey]time.Time) {
	var wg sync.WaitGroup
	if len(attempts) > 0 {
		wg.Go(func() {
			if err := h.log.Record(ctx, attempts); err != nil {
				h.logger.ErrorContext(ctx, "record delivery attempts", "attempts", len(attempts), "error", err)
			}
		})
	}
	wg.Go(func() { h.advance(ctx, h.marks.due(marks, h.now(), false)) })
	wg.Wait()
}

// Sender makes one signed POST exactly as every delivery does (shared/sender).
type Sender = sender.Sender

// notify publishes a notification about an endpoint. A failure is logged, not retried: the
// delivery it follows already happened, and the endpoint's state (GET /endpoints/{id})
// still says it.
func (h *Handler) notify(ctx context.Context, e domain.Event) {
	if h.notifier == nil {
		return
	}
	if err := h.notifier.Publish(ctx, e); err != nil {
		h.logger.ErrorContext(ctx, "publish notification", "type", e.Type, "event_id", e.ID, "tenant_id", e.TenantID,
			"endpoint_id", domain.NotificationSubject(e), "error", err)
		return
	}
	h.logger.InfoContext(ctx, "notification published", "type", e.Type, "event_id", e.ID, "tenant_id", e.TenantID,
		"endpoint_id", domain.NotificationSubject(e))
}
