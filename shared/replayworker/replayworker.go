// Package replayworker runs replays: for each replay job on the ReplayQueue it pages the
// tenant's stored events from the replay's From up to its Until (the moment the replay was
// requested), keeps those the endpoint subscribes to, and enqueues them as delivery jobs.
//
// Jobs go out in full SendMessageBatch calls only: the jobs of a page that do not fill a
// batch are carried over to the next page, and only the last page of the range (or the last
// before a hand-on) sends a short batch. Progress is checkpointed in the replay record after
// each send, always after the jobs are on the DeliveryQueue and never past a job that is
// not: the saved cursor is the position right after the last event sent (the page's end
// when nothing is carried). A crash or timeout resumes from the last checkpoint, so no
// event is skipped and at most one send's jobs are sent twice. The SQS client adds its own
// duplicates: when a SendMessageBatch call's response is lost (a broken connection, a 5xx)
// the SDK's retryer sends the whole call again, and SQS may hold that batch twice. Both are
// the at-least-once delivery the service promises (docs/events.md): receivers de-duplicate
// on webhook-id, which is the event id. A replay that would outlast the Lambda invocation is
// handed on to a fresh one through a new ReplayQueue message.
package replayworker

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
)

// ReplayStore reads and advances replay records (shared/store.Replays).
type ReplayStore interface {
	// GetReplay loads a replay; domain NotFound when there is none.
	GetReplay(ctx context.Context, tenantID, replayID string) (domain.Replay, error)
	// UpdateProgress saves r's status, enqueued count and cursor and renews the endpoint's
	// replay lock until leaseUntil; a domain Conflict with ReasonReplayInProgress when
	// another replay has taken the lock.
	UpdateProgress(ctx context.Context, r domain.Replay, leaseUntil, now time.Time) error
	// FinishReplay saves r's final state and releases the endpoint's lock if r holds it.
	FinishReplay(ctx context.Context, r domain.Replay, now time.Time) error
}

// EndpointGetter loads the endpoint a replay targets (shared/store.Endpoints).
type EndpointGetter interface {
	GetEndpoint(ctx context.Context, tenantID, endpointID string) (domain.Endpoint, error)
}

// EventPager reads a tenant's stored events in time order (shared/store.Events).
type EventPager interface {
	// Page returns up to limit events with from <= occurred_at < until, resuming after
	// cursor ("" = from the start); next is "" when there are no more.
	Page(ctx context.Context, tenantID string, from, until time.Time, cursor string, limit int) (evs []domain.Event, next string, err error)
	// After returns the cursor that resumes a Page walk right after e, one of the events a
	// Page returned: a caller that used a page only up to e continues from there.
	After(e domain.Event) string
}

// FailedPager reads, in time order, the events whose latest delivery to an endpoint did not
// succeed (shared/store.Recovery): the events of a replay with only_failed.
type FailedPager interface {
	// PageFailed is Page restricted to those events of the endpoint.
	PageFailed(ctx context.Context, tenantID, endpointID string, from, until time.Time, cursor string, limit int) (evs []domain.Event, next string, err error)
	// AfterFailed returns the cursor that resumes a PageFailed walk right after e.
	AfterFailed(e domain.Event) string
}

// JobSender enqueues delivery jobs (shared/queue.DeliveryJobs).
type JobSender interface {
	// Send enqueues jobs; failed are those still not accepted after the sender's retries.
	Send(ctx context.Context, jobs []domain.DeliveryJob) (failed []domain.DeliveryJob, err error)
}

// Continuer hands a replay on to a new invocation (shared/queue.ReplayJobs).
type Continuer interface {
	SendReplay(ctx context.Context, tenantID, replayID string) error
}

// Deps are the worker's adapters, instruments and options. Metrics, Now, Logger and every
// option are optional.
type Deps struct {
	Replays   ReplayStore
	Endpoints EndpointGetter
	Events    EventPager
	// Failed pages the events of a replay with only_failed.
	Failed    FailedPager
	Jobs      JobSender
	Continuer Continuer
	// Metrics counts ReplayEventsEnqueued (nil: none).
	Metrics *metrics.Emitter
	// Now is the clock of the replay record's timestamps and lock lease (time.Now).
	Now     func() time.Time
	Logger  *slog.Logger
	Options Options
}

// Defaults of Options.
const (
	DefaultPageSize       = 100
	DefaultBatchSize      = 10
	DefaultDeadlineMargin = 30 * time.Second
	// DefaultMaxReceives matches the ReplayQueue's maxReceiveCount in template.yaml.
	DefaultMaxReceives = 5
)

// Options tunes the worker; zero values take the defaults.
type Options struct {
	// PageSize is how many events are read per page (at most one checkpoint per page).
	PageSize int
	// BatchSize is the number of jobs in a full SendMessageBatch call (SQS allows 10): the
	// worker sends multiples of it and carries the rest to the next page.
	BatchSize int
	// DeadlineMargin is how long before the invocation's deadline the worker stops paging
	// and hands the replay on. It must exceed the time one page takes.
	DeadlineMargin time.Duration
	// MaxReceives is the ReplayQueue's maxReceiveCount: when a job fails on its last
	// receive, the replay is marked failed (releasing the endpoint's lock) before SQS moves
	// the message to the dead-letter queue.
	MaxReceives int
}

// Handler is the replay worker's Lambda handler. It keeps no per-invocation state, so
// one Handler serves concurrent invocations.
type Handler struct {
	d    Deps
	opts Options
	now  func() time.Time
	log  *slog.Logger
}

// New checks d and returns a Handler; build one per instance, at cold start.
func New(d Deps) (*Handler, error) {
	if d.Replays == nil || d.Endpoints == nil || d.Events == nil || d.Failed == nil || d.Jobs == nil || d.Continuer == nil {
		return nil, errors.New("replayworker: Deps needs Replays, Endpoints, Events, Failed, Jobs and Continuer")
	}
	h := &Handler{d: d, opts: d.Options, now: d.Now, log: d.Logger}
	if h.opts.PageSize <= 0 {
		h.opts.PageSize = DefaultPageSize
	}
	if h.opts.BatchSize <= 0 {
		h.opts.BatchSize = DefaultBatchSize
	}
	if h.opts.DeadlineMargin <= 0 {
		h.opts.DeadlineMargin = DefaultDeadlineMargin
	}
	if h.opts.MaxReceives <= 0 {
		h.opts.MaxReceives = DefaultMaxReceives
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	return h, nil
}

// invocation is what one Handle call shares across its records.
type invocation struct {
	deadline    time.Time
	hasDeadline bool
	margin      time.Duration
	pages       int // pages enqueued so far in this invocation
}

// handOn reports whether the replay should continue in a new invocation: the deadline is
// within the margin. Every invocation enqueues at least one page first, so a margin
// larger than the function's timeout slows a replay down but never stalls it.
func (inv *invocation) handOn() bool {
	return inv.hasDeadline && inv.pages > 0 && time.Until(inv.deadline) < inv.margin
}

// Handle runs the replay job of each record. A record is reported as a batch item failure
// only when retrying it can help (a dependency failed, or jobs could not be enqueued); SQS
// then redelivers it and the replay resumes from its last checkpoint.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	inv := &invocation{margin: h.opts.DeadlineMargin}
	inv.deadline, inv.hasDeadline = ctx.Deadline()
	var resp events.SQSEventResponse
	for _, msg := range ev.Records {
		if !h.handleRecord(ctx, inv, msg) {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: msg.MessageId})
		}
	}
	return resp, nil
}

// handleRecord runs one replay job and reports whether its message is done with.
func (h *Handler) handleRecord(ctx context.Context, inv *invocation, msg events.SQSMessage) bool {
	job, err := queue.ParseReplayJob(msg.Body)
	if err != nil {
		// Retrying cannot fix it; failing it lets SQS redrive put it in the DLQ, where
		// the DLQ alarm shows it, rather than dropping it silently.
		h.log.ErrorContext(ctx, "malformed replay job", "message_id", msg.MessageId, "error", err)
		return false
	}
	log := h.log.With("tenant_id", job.TenantID, "replay_id", job.ReplayID)
	if inv.handOn() {
		// An earlier record of this batch used up the invocation.
		return h.continueLater(ctx, log, job.TenantID, job.ReplayID, -1)
	}
	r, ack := h.run(ctx, inv, log, job)
	if ack || r == nil {
		return ack
	}
	if n, err := strconv.Atoi(msg.Attributes["ApproximateReceiveCount"]); err == nil && n >= h.opts.MaxReceives {
		// This was the last attempt: SQS moves the message to the DLQ (and its alarm
		// fires). Mark the replay failed so its state is final and the endpoint's lock is
		// released; the tenant can start a new replay from the endpoint's watermark.
		h.fail(ctx, log, *r, fmt.Sprintf("gave up after %d attempts to enqueue its events", n))
	}
	return false
}

// run runs one replay job. It returns whether the message is done with and, when it is not,
// the replay as last checkpointed (nil if it was not loaded).
func (h *Handler) run(ctx context.Context, inv *invocation, log *slog.Logger, job queue.ReplayJob) (*domain.Replay, bool) {
	r, err := h.d.Replays.GetReplay(ctx, job.TenantID, job.ReplayID)
	if errors.Is(err, domain.ErrNotFound) {
		log.WarnContext(ctx, "replay job for an unknown replay; acknowledged")
		return nil, true
	}
	if err != nil {
		log.ErrorContext(ctx, "load replay", "error", err)
		return nil, false
	}
	if final(r.Status) {
		// SQS delivers at least once: a repeated job of a finished replay is a no-op.
		log.InfoContext(ctx, "replay already finished; job acknowledged", "status", string(r.Status), "enqueued", r.Enqueued)
		return nil, true
	}
	log = log.With("endpoint_id", r.EndpointID)

	ep, err := h.d.Endpoints.GetEndpoint(ctx, r.TenantID, r.EndpointID)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return &r, h.fail(ctx, log, r, "the endpoint was deleted")
	case err != nil:
		log.ErrorContext(ctx, "load endpoint", "error", err)
		return &r, false
	case ep.Status != domain.StatusActive:
		reason := "the endpoint is disabled"
		switch {
		case ep.DisabledDetail != "":
			reason += " (" + ep.DisabledDetail + ")"
		case ep.DisabledReason != "":
			reason += " (" + string(ep.DisabledReason) + ")"
		}
		return &r, h.fail(ctx, log, r, reason)
	}

	// Mark the replay running and renew the lock before sending anything: a worker whose
	// lease ran out and whose lock another replay took stops here, without sending a page.
	r.Status = domain.ReplayRunning
	if cont, ack := h.checkpoint(ctx, log, r); !cont {
		return &r, ack
	}
	if r.Cursor == "" {
		log.InfoContext(ctx, "replay started", "from", r.From, "until", r.Until, "only_failed", r.OnlyFailed)
	} else {
		log.InfoContext(ctx, "replay resumed", "enqueued", r.Enqueued)
	}
	// A replay reads every stored event of its range, or with only_failed just those whose
	// latest delivery to the endpoint did not succeed.
	page := func(cursor string) ([]domain.Event, string, error) {
		if r.OnlyFailed {
			return h.d.Failed.PageFailed(ctx, r.TenantID, r.EndpointID, r.From, r.Until, cursor, h.opts.PageSize)
		}
		return h.d.Events.Page(ctx, r.TenantID, r.From, r.Until, cursor, h.opts.PageSize)
	}
	after := h.d.Events.After
	if r.OnlyFailed {
		after = h.d.Failed.AfterFailed
	}
	// carry holds the jobs read but not sent yet (fewer than a batch); read is where the
	// next page starts. r.Cursor is what was checkpointed: every matching event before it
	// is on the queue, none after it.
	var carry []domain.DeliveryJob
	read := r.Cursor
	for {
		if inv.handOn() {
			// The carried jobs go out now, even as a short batch, so the next invocation
			// starts after them: a sparse subscription can never stall a replay.
			if !h.send(ctx, log, &r, carry, read) {
				return &r, false
			}
			if cont, ack := h.checkpoint(ctx, log, r); !cont {
				return &r, ack
			}
			return &r, h.continueLater(ctx, log, r.TenantID, r.ID, r.Enqueued)
		}
		evs, next, err := page(read)
		if err != nil {
			log.ErrorContext(ctx, "read events", "enqueued", r.Enqueued, "error", err)
			return &r, false
		}
		inv.pages++
		read = next
		carry = append(carry, deliveryJobs(ep, r.ID, evs)...)
		n := len(carry)
		if next != "" {
			n -= n % h.opts.BatchSize // full batches only; the rest waits for the next page
		}
		if n == 0 && next != "" && len(carry) > 0 {
			continue // nothing sent, so nothing new to checkpoint
		}
		resume := read
		if n < len(carry) {
			resume = after(carry[n-1].Event)
		}
		if !h.send(ctx, log, &r, carry[:n], resume) {
			return &r, false
		}
		carry = append(carry[:0], carry[n:]...)
		if next == "" {
			r.Status = domain.ReplayCompleted
			if err := h.d.Replays.FinishReplay(ctx, r, h.now().UTC()); err != nil {
				log.ErrorContext(ctx, "finish replay", "enqueued", r.Enqueued, "error", err)
				return &r, false
			}
			log.InfoContext(ctx, "replay completed", "enqueued", r.Enqueued)
			return &r, true
		}
		if cont, ack := h.checkpoint(ctx, log, r); !cont {
			return &r, ack
		}
		log.DebugContext(ctx, "replay checkpoint", "enqueued", r.Enqueued, "sent", n, "carried", len(carry))
	}
}

// send enqueues jobs (all of one SendMessageBatch wave) and, once they are all on the
// queue, advances r to the cursor resume, the position right after the last of them. It
// reports whether that worked; if not, r is unchanged, so the retry sends them again and
// nothing is skipped.
func (h *Handler) send(ctx context.Context, log *slog.Logger, r *domain.Replay, jobs []domain.DeliveryJob, resume string) bool {
	if len(jobs) > 0 {
		failed, err := h.d.Jobs.Send(ctx, jobs)
		if err != nil || len(failed) > 0 {
			log.ErrorContext(ctx, "enqueue delivery jobs", "enqueued", r.Enqueued, "page_jobs", len(jobs), "failed_jobs", len(failed), "error", err)
			return false
		}
	}
	r.Enqueued += int64(len(jobs))
	h.d.Metrics.Add(metrics.ReplayEventsEnqueued, float64(len(jobs)))
	r.Cursor = resume
	return true
}

// checkpoint saves r's progress and renews the endpoint's lock. cont says whether the
// replay may go on; when it may not, ack says whether its message is done with.
func (h *Handler) checkpoint(ctx context.Context, log *slog.Logger, r domain.Replay) (cont, ack bool) {
	now := h.now().UTC()
	err := h.d.Replays.UpdateProgress(ctx, r, now.Add(domain.ReplayLease), now)
	var de *domain.Error
	switch {
	case err == nil:
		return true, true
	case errors.As(err, &de) && de.Kind == domain.KindConflict && de.Reason == domain.ReasonReplayInProgress:
		// The lease expired and another replay of the endpoint took the lock: two replays
		// must not run at once, so this one stops for good.
		log.WarnContext(ctx, "replay lost the endpoint's replay lock; stopping", "enqueued", r.Enqueued)
		h.abandon(ctx, log, r)
		return false, true
	case errors.Is(err, domain.ErrEndpointDeleted):
		// The tenant deleted the endpoint while its replay ran: stop, and say why.
		return false, h.fail(ctx, log, r, "the endpoint was deleted")
	case errors.Is(err, domain.ErrNotFound):
		log.WarnContext(ctx, "replay record disappeared; stopping", "enqueued", r.Enqueued)
		return false, true
	default:
		log.ErrorContext(ctx, "checkpoint replay", "enqueued", r.Enqueued, "error", err)
		return false, false
	}
}

// abandon marks a replay that lost its lock failed, unless it already reached a final state
// (another delivery of its job may have completed it).
func (h *Handler) abandon(ctx context.Context, log *slog.Logger, r domain.Replay) {
	cur, err := h.d.Replays.GetReplay(ctx, r.TenantID, r.ID)
	if err != nil {
		log.ErrorContext(ctx, "load replay", "error", err)
		return
	}
	if final(cur.Status) {
		return
	}
	h.fail(ctx, log, cur, "its lease on the endpoint expired and another replay of the endpoint started")
}

// fail stores r as failed with reason (shown by GET /replays/{id}) and releases the
// endpoint's lock. It reports whether that was saved.
func (h *Handler) fail(ctx context.Context, log *slog.Logger, r domain.Replay, reason string) bool {
	r.Status = domain.ReplayFailed
	r.Error = reason
	if err := h.d.Replays.FinishReplay(ctx, r, h.now().UTC()); err != nil {
		log.ErrorContext(ctx, "mark replay failed", "reason", reason, "error", err)
		return false
	}
	log.WarnContext(ctx, "replay failed", "reason", reason, "enqueued", r.Enqueued)
	return true
}

// continueLater queues a new job for the replay so a fresh invocation resumes it from its
// checkpoint, and reports whether that worked (if not, SQS redelivers this message).
func (h *Handler) continueLater(ctx context.Context, log *slog.Logger, tenantID, replayID string, enqueued int64) bool {
	if err := h.d.Continuer.SendReplay(ctx, tenantID, replayID); err != nil {
		log.ErrorContext(ctx, "hand replay on to a new invocation", "error", err)
		return false
	}
	if enqueued >= 0 {
		log.InfoContext(ctx, "replay continues in a new invocation", "enqueued", enqueued)
	} else {
		log.InfoContext(ctx, "replay job deferred to a new invocation")
	}
	return true
}

// deliveryJobs turns the events the endpoint subscribes to into its delivery jobs, but for
// the notifications about the endpoint itself (never sent to it, as at fan-out). The event
// is carried unchanged, so the replayed delivery has the original's webhook-id.
func deliveryJobs(ep domain.Endpoint, replayID string, evs []domain.Event) []domain.DeliveryJob {
	var jobs []domain.DeliveryJob
	for _, e := range evs {
		if ep.Subscribes(e.Type) && domain.NotificationSubject(e) != ep.ID {
			jobs = append(jobs, domain.DeliveryJob{TenantID: ep.TenantID, EndpointID: ep.ID, Event: e, ReplayID: replayID})
		}
	}
	return jobs
}

func final(s domain.ReplayStatus) bool {
	return s == domain.ReplayCompleted || s == domain.ReplayFailed
}
