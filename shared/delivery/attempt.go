package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/metrics"
	"github.com/datajetty/webhooks/shared/queue"
	"github.com/datajetty/webhooks/shared/sender"
	"github.com/datajetty/webhooks/shared/signing"
)

// Error classes recorded for failed attempts (shared/sender classifies them).
const (
	ClassTimeout  = sender.ClassTimeout
	ClassConnect  = sender.ClassConnect
	ClassBlocked  = sender.ClassBlocked
	ClassTLS      = sender.ClassTLS
	ClassRedirect = sender.ClassRedirect
	ClassHTTP4xx  = sender.ClassHTTP4xx
	ClassHTTP5xx  = sender.ClassHTTP5xx
	ClassGone     = sender.ClassGone
)

// goneDetail is the disabled_detail of an endpoint disabled by a 410.
const goneDetail = "410 Gone"

// Classes of skipped deliveries (nothing was sent): why the job was not delivered.
const (
	ClassDisabled = domain.SkippedDisabled // the endpoint is disabled
	ClassDeleted  = domain.SkippedDeleted  // the endpoint was deleted
)

// maxDelay is the longest visibility the handler asks for. SQS counts its 12-hour limit
// from the receive, and a few seconds have passed since then (the attempt itself).
const maxDelay = 12*time.Hour - 5*time.Minute

// finishReserve is kept from the invocation's deadline for recording the batch, so a slow
// receiver cannot make the invocation time out with its outcomes unrecorded.
const finishReserve = 5 * time.Second

// outcome is what became of one message.
type outcome struct {
	ack     bool            // delete the message; false reports it as a batch item failure
	attempt *domain.Attempt // nil when no attempt is recorded (malformed job, our own failure)
}

// deliver handles one message.
func (h *Handler) deliver(ctx context.Context, msg *events.SQSMessage) outcome {
	job, body, err := decode(msg)
	if err != nil {
		// Only a bug can produce a malformed job (our own functions write them all), so it
		// is neither acknowledged, which would drop it, nor retried on a schedule: it is
		// reported as failed, and SQS redrive moves it to the DLQ after maxReceiveCount
		// receives, where it waits for the fix.
		h.logger.ErrorContext(ctx, "malformed delivery job", "message_id", msg.MessageId, "error", err)
		return outcome{}
	}
	n := h.attemptNumber(ctx, msg)
	log := newJobLog(h.logger, job, n)
	key := cacheKey(job.TenantID, job.EndpointID)
	tgt, err := h.cache.get(ctx, key, h.now(), func(ctx context.Context) (*target, error) {
		return h.load(ctx, job.TenantID, job.EndpointID)
	})
	if err != nil {
		// Our dependency failed (DynamoDB, KMS), not the receiver: nothing was sent and the
		// tenant's log gets no attempt. The message still follows the retry schedule, so an
		// outage of ours gets the same patience as one of the receiver's.
		// After the last receive the message goes to the DLQ like any exhausted delivery.
		delay, last := time.Duration(0), n >= h.opts.MaxAttempts
		if !last {
			delay = h.scheduled(n)
		}
		log.log(ctx, slog.LevelError, "delivery not attempted: endpoint unavailable",
			slog.String("retry_in", delay.String()), slog.Bool("dead_lettered", last), slog.Any("error", err))
		h.setVisibility(ctx, log, msg, delay)
		return outcome{}
	}

	now := h.now()
	a := &domain.Attempt{
		TenantID:    job.TenantID,
		EndpointID:  job.EndpointID,
		EventID:     job.Event.ID,
		EventType:   job.Event.Type,
		OccurredAt:  job.Event.OccurredAt,
		ReplayID:    job.ReplayID,
		Resend:      job.Resend,
		Number:      n,
		AttemptedAt: now,
	}
	if !tgt.active() {
		// Acknowledged without a POST; the log line and the attempt say why.
		a.Status, a.ErrorClass = domain.DeliverySkipped, ClassDisabled
		if !tgt.found {
			a.ErrorClass = ClassDeleted
		}
		h.metrics.Add(metrics.DeliveriesSkipped, 1)
		log.attempt(ctx, a)
		return outcome{ack: true, attempt: a}
	}

	res := h.post(ctx, tgt, job.Event.ID, body, now)
	a.HTTPStatus, a.ErrorClass, a.Latency = res.Status, res.Class, res.Latency
	h.metrics.Observe(metrics.DeliveryLatency, metrics.Milliseconds, float64(res.Latency.Milliseconds()))

	switch {
	case res.OK():
		a.Status = domain.DeliverySucceeded
		h.metrics.Add(metrics.DeliveriesSucceeded, 1)
		log.attempt(ctx, a)
		return outcome{ack: true, attempt: a}

	case res.Class == ClassGone:
		// 410 is the receiver saying "never again": disable now rather than retry for a day.
		// The message is acknowledged (dead, but not dead-lettered: there is nothing to
		// redrive to an endpoint that is gone).
		a.Status = domain.DeliveryDead
		h.metrics.Add(metrics.DeliveriesFailed, 1)
		log.attempt(ctx, a)
		ep, changed, err := h.state.Disable(ctx, job.TenantID, job.EndpointID, domain.DisabledGone, goneDetail, now)
		switch {
		case err != nil && !errors.Is(err, domain.ErrNotFound):
			log.log(ctx, slog.LevelError, "disable endpoint after 410 Gone", slog.Any("error", err))
		case changed:
			log.log(ctx, slog.LevelWarn, "endpoint disabled", slog.String("reason", string(domain.DisabledGone)))
			h.notify(ctx, domain.EndpointDisabledEvent(ep, domain.DisabledGone, goneDetail, a, now))
		}
		h.cache.invalidate(key)
		return outcome{ack: true, attempt: a}

	case n < h.opts.MaxAttempts:
		delay := h.scheduled(n)
		if res.RetryAfter > 0 {
			delay = res.RetryAfter
		}
		delay = min(delay, maxDelay)
		a.Status = domain.DeliveryPending
		a.NextAt = now.Add(delay)
		h.metrics.Add(metrics.DeliveriesFailed, 1)
		h.metrics.Add(metrics.RetriesScheduled, 1)
		log.attempt(ctx, a, slog.String("retry_in", delay.String()))
		h.setVisibility(ctx, log, msg, delay)
		return outcome{attempt: a}

	default:
		// The last attempt failed: make the message visible at once and report it failed,
		// so the next receive exceeds maxReceiveCount and SQS redrive dead-letters it.
		a.Status = domain.DeliveryDead
		h.metrics.Add(metrics.DeliveriesFailed, 1)
		h.metrics.Add(metrics.DeliveriesDeadLetter, 1)
		log.attempt(ctx, a)
		h.setVisibility(ctx, log, msg, 0)
		ex, err := h.state.RecordExhausted(ctx, job.TenantID, job.EndpointID, h.opts.AutoDisableThreshold, now)
		if err != nil {
			log.log(ctx, slog.LevelError, "record exhausted delivery", slog.Any("error", err))
		}
		// The first exhausted delivery of a streak makes the endpoint failing (the early
		// warning); the one that reaches the threshold disables it. Both can be one call
		// (a threshold of 1): the warning goes first.
		if ex.Failing {
			log.log(ctx, slog.LevelWarn, "endpoint failing")
			h.notify(ctx, domain.EndpointFailingEvent(ex.Endpoint, ex.Endpoint.FailingSince, *a, now))
		}
		if ex.Disabled {
			log.log(ctx, slog.LevelWarn, "endpoint auto-disabled", slog.Int("threshold", h.opts.AutoDisableThreshold))
			h.metrics.Add(metrics.EndpointsAutoDisabled, 1)
			h.cache.invalidate(key)
			h.notify(ctx, domain.EndpointDisabledEvent(ex.Endpoint, domain.DisabledFailing, ex.Endpoint.DisabledDetail, a, now))
		}
		return outcome{attempt: a}
	}
}

// decode returns the message's job and the payload to POST: the message body as is, the
// sender having rendered it (queue.EncodeDeliveryJob).
func decode(msg *events.SQSMessage) (domain.DeliveryJob, []byte, error) {
	job, err := queue.ParseDeliveryMessage(*msg)
	if err != nil {
		return job, nil, err
	}
	return job, job.Payload, nil
}

// attemptNumber is the message's receive count: 1 on the first delivery, and one more for
// every retry, because every retry is a new receive of the same message.
func (h *Handler) attemptNumber(ctx context.Context, msg *events.SQSMessage) int {
	n, err := strconv.Atoi(msg.Attributes["ApproximateReceiveCount"])
	if err != nil || n < 1 {
		h.logger.WarnContext(ctx, "message without a usable ApproximateReceiveCount; counting it as attempt 1", "message_id", msg.MessageId)
		return 1
	}
	return n
}

func cacheKey(tenantID, endpointID string) string { return tenantID + "\x00" + endpointID }

// load reads the endpoint and opens its signing secrets. A missing endpoint is a target
// too (found false), so that it is cached like any other.
func (h *Handler) load(ctx context.Context, tenantID, endpointID string) (*target, error) {
	ep, err := h.endpoints.GetEndpoint(ctx, tenantID, endpointID)
	if errors.Is(err, domain.ErrNotFound) {
		return &target{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load endpoint %s: %w", endpointID, err)
	}
	t := &target{found: true, ep: ep}
	if ep.Status != domain.StatusActive {
		return t, nil
	}
	if len(ep.SecretCiphertext) == 0 {
		return nil, fmt.Errorf("endpoint %s has no signing secret", endpointID)
	}
	now := h.now()
	for _, ct := range ep.SigningCiphertexts(now) {
		s, err := h.secretsMem.open(secretKey(tenantID, endpointID, ct), now, func() (signing.Secret, error) {
			return h.secrets.Open(ctx, tenantID, endpointID, ct)
		})
		if err != nil {
			return nil, fmt.Errorf("open signing secret of endpoint %s: %w", endpointID, err)
		}
		t.secrets = append(t.secrets, s)
	}
	return t, nil
}

// post makes one signed delivery through the handler's Sender, within the attempt
// timeout (shortened near the invocation's deadline).
func (h *Handler) post(ctx context.Context, tgt *target, msgID string, body []byte, now time.Time) domain.PostResult {
	actx, cancel := context.WithTimeout(ctx, h.attemptTimeout(ctx))
	defer cancel()
	return h.sender.Send(actx, tgt.ep.URL, msgID, body, tgt.signers(now), now, 0)
}

// attemptTimeout is AttemptTimeout, shortened when the invocation would otherwise end
// before the batch can be recorded.
func (h *Handler) attemptTimeout(ctx context.Context) time.Duration {
	d := h.opts.AttemptTimeout
	if deadline, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(deadline)-finishReserve)
	}
	return max(d, time.Millisecond)
}

// scheduled is the jittered delay after failed attempt n.
func (h *Handler) scheduled(n int) time.Duration {
	i := min(n-1, len(h.opts.Schedule)-1)
	if i < 0 {
		return 0
	}
	return jitter(h.opts.Schedule[i], h.opts.Jitter, h.rand())
}

// jitter spreads d uniformly over d·(1 ± j), r being uniform in [0, 1).
func jitter(d time.Duration, j, r float64) time.Duration {
	return time.Duration(float64(d) * (1 + j*(2*r-1)))
}

func (h *Handler) setVisibility(ctx context.Context, log jobLog, msg *events.SQSMessage, delay time.Duration) {
	if err := h.visibility.ChangeVisibility(ctx, msg.ReceiptHandle, delay); err != nil {
		// The message still comes back, after the queue's default visibility timeout.
		log.log(ctx, slog.LevelError, "change message visibility", slog.String("delay", delay.String()), slog.Any("error", err))
	}
}

// The classification and Retry-After parsing of shared/sender, under the names this
// package's tests use.
var (
	statusClass = sender.StatusClass
	errorClass  = sender.ErrorClass
	retryAfter  = sender.RetryAfter
)

// jobLog writes a job's log lines, each carrying the job's identifiers. (Logger.With
// would pre-render them into a new handler per message, which costs more than the line.)
// The attributes of a line are assembled in a stack buffer: nothing is allocated for them
// beyond what slog itself does.
type jobLog struct {
	logger     *slog.Logger
	tenantID   string
	endpointID string
	eventID    string
	replayID   string
	number     int // the attempt number
}

// maxLineAttrs is the stack buffer of one line's attributes: the identifiers (5) and an
// attempt's outcome (4) plus one extra. A line with more still works (append grows it).
const maxLineAttrs = 10

func newJobLog(l *slog.Logger, job domain.DeliveryJob, attempt int) jobLog {
	return jobLog{logger: l, tenantID: job.TenantID, endpointID: job.EndpointID, eventID: job.Event.ID, replayID: job.ReplayID, number: attempt}
}

func (l jobLog) log(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if !l.logger.Enabled(ctx, level) {
		return
	}
	var buf [maxLineAttrs]slog.Attr
	all := append(buf[:0], slog.String("tenant_id", l.tenantID), slog.String("endpoint_id", l.endpointID),
		slog.String("event_id", l.eventID), slog.Int("attempt", l.number))
	if l.replayID != "" {
		all = append(all, slog.String("replay_id", l.replayID))
	}
	all = append(all, attrs...)
	l.logger.LogAttrs(ctx, level, msg, all...)
}

// attempt writes the attempt's log line: identifiers and outcome only, never the URL (it
// may carry a token), secrets, signatures, payloads or response bodies.
func (l jobLog) attempt(ctx context.Context, a *domain.Attempt, extra ...slog.Attr) {
	level := slog.LevelInfo
	if a.Status == domain.DeliveryPending || a.Status == domain.DeliveryDead {
		level = slog.LevelWarn
	}
	var buf [maxLineAttrs]slog.Attr
	attrs := append(buf[:0], slog.String("status", string(a.Status)), slog.Int("http_status", a.HTTPStatus),
		slog.Int64("latency_ms", a.Latency.Milliseconds()))
	if a.ErrorClass != "" {
		attrs = append(attrs, slog.String("error_class", a.ErrorClass))
	}
	l.log(ctx, level, "delivery attempt", append(attrs, extra...)...)
}
