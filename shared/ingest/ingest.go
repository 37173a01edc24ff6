// Package ingest is the IngestQueue consumer: it validates each platform event, fans it out
// as one delivery job per subscribed endpoint, and then stores it once in the Events table.
//
// Delivery is at least once. An event is stored only after every one of its jobs reached
// the DeliveryQueue, so a stored event is a fanned-out event: a copy of one (a producer's
// retry, an SQS redelivery, a redriven message) is recognised with one read and not fanned
// out again, and an event whose fan-out or store failed is fanned out again when its
// message comes back (receivers de-duplicate on webhook-id, the event id). One write per
// event, no second one to mark it done. A malformed event is moved to the ingest DLQ with
// the reason and acknowledged, so it is neither retried forever nor lost.
package ingest

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/eventtypes"
	"github.com/datajetty/webhooks/shared/metrics"
	"github.com/datajetty/webhooks/shared/queue"
)

// EventStore keeps events idempotently, keyed by (tenant, occurred_at, id).
type EventStore interface {
	// Stored reports, for each event, whether a copy is stored. It may miss a copy stored
	// a moment ago (an eventually consistent read): that costs a second fan-out, no event.
	Stored(ctx context.Context, evs []domain.Event) ([]bool, error)
	// Put stores the event unless a copy is stored (that copy is kept), reporting which.
	Put(ctx context.Context, e domain.Event) (duplicate bool, err error)
}

// EndpointLister pages through a tenant's endpoints in id order.
type EndpointLister interface {
	ListEndpoints(ctx context.Context, tenantID string, limit int, afterID string) (eps []domain.Endpoint, more bool, err error)
}

// JobSender enqueues delivery jobs. failed must hold every job not known to be enqueued,
// also when err is set: the handler trusts it to decide which events are fanned out.
type JobSender interface {
	Send(ctx context.Context, jobs []domain.DeliveryJob) (failed []domain.DeliveryJob, err error)
}

// SkipRecorder writes delivery-log records (shared/store.Deliveries): here, the deliveries
// skipped because a subscribed endpoint is disabled.
type SkipRecorder interface {
	Record(ctx context.Context, attempts []domain.Attempt) error
}

// DeadLetterSender moves a message that can never succeed to the dead-letter queue.
type DeadLetterSender interface {
	Send(ctx context.Context, body, reason, sourceMessageID string) error
}

// endpointPageSize is the page size of endpoint listings (the store's maximum).
const endpointPageSize = 100

// storeConcurrency bounds the parallel DynamoDB writes of one invocation.
const storeConcurrency = 10

// Deps are the handler's adapters and instruments. Logger and Metrics are optional.
type Deps struct {
	Events      EventStore
	Endpoints   EndpointLister
	Jobs        JobSender
	DeadLetters DeadLetterSender
	// Skips records a skipped delivery for each event a disabled endpoint subscribes to.
	Skips  SkipRecorder
	Logger *slog.Logger
	// Metrics counts EventsIngested and EventsRejected (nil: none).
	Metrics *metrics.Emitter
	// Now is the clock events are checked against (domain.CheckEventTime); nil: time.Now.
	Now func() time.Time
	// EventTypes is the catalog an event's type must be declared in (nil: the built-in
	// catalog, eventtypes.Builtin).
	EventTypes *eventtypes.Catalog
}

// Handler consumes IngestQueue batches. It holds no per-invocation state, so one Handler
// serves concurrent invocations.
type Handler struct {
	events      EventStore
	endpoints   EndpointLister
	jobs        JobSender
	deadLetters DeadLetterSender
	skips       SkipRecorder
	log         *slog.Logger
	metrics     *metrics.Emitter
	now         func() time.Time
	eventTypes  *eventtypes.Catalog
}

// New checks d and returns a Handler; build one per instance, at cold start.
func New(d Deps) (*Handler, error) {
	if d.Events == nil || d.Endpoints == nil || d.Jobs == nil || d.DeadLetters == nil || d.Skips == nil {
		return nil, errors.New("ingest: Deps needs Events, Endpoints, Jobs, DeadLetters and Skips")
	}
	h := &Handler{events: d.Events, endpoints: d.Endpoints, jobs: d.Jobs, deadLetters: d.DeadLetters, skips: d.Skips, log: d.Logger, metrics: d.Metrics, now: d.Now, eventTypes: d.EventTypes}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.eventTypes == nil {
		h.eventTypes = eventtypes.Builtin()
	}
	return h, nil
}

// eventKey identifies an event as the store does: tenant, occurred_at and id.
type eventKey struct {
	tenant, id string
	sec        int64
	nsec       int
}

func keyOf(e domain.Event) eventKey {
	return eventKey{tenant: e.TenantID, id: e.ID, sec: e.OccurredAt.Unix(), nsec: e.OccurredAt.Nanosecond()}
}

// record is one SQS message of the batch, once parsed.
type record struct {
	msgID  string
	event  domain.Event
	failed bool
}

// fanOut is one distinct event of the batch that needs its jobs sent; records are the
// messages carrying it (several when a batch holds the same event twice).
type fanOut struct {
	event   domain.Event
	records []*record
	jobs    int
	// skipped are the records of the deliveries to disabled endpoints that subscribe.
	skipped []domain.Attempt
	failed  bool
}

// batch is one invocation's messages as they go through the phases of Handle.
type batch struct {
	records []*record // every message, in the batch's order
	valid   []*record // the messages that hold a well-formed event
	// pending are the distinct events still to fan out, byKey the same by event key.
	pending []*fanOut
	byKey   map[eventKey]*fanOut
	jobs    int // delivery jobs built
}

// Handle processes one batch and reports the messages to retry. It never returns an
// error: every per-message problem is a batch item failure, so SQS retries just those
// messages (and after five receives redrives them to the ingest DLQ).
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	b := h.parse(ctx, ev.Records)
	b.group(ctx, h.log, h.lookUp(ctx, b.valid))
	h.sendJobs(ctx, b, h.buildJobs(ctx, b.pending))
	h.store(ctx, b.pending)
	h.recordSkipped(ctx, b.pending)
	resp := b.response()
	h.log.InfoContext(ctx, "ingest batch done", "records", len(b.records), "events", len(b.valid), "fanned_out", len(b.pending),
		"jobs", b.jobs, "failures", len(resp.BatchItemFailures))
	return resp, nil
}

// parse reads every message's event and dead-letters the malformed ones.
func (h *Handler) parse(ctx context.Context, msgs []events.SQSMessage) *batch {
	b := &batch{records: make([]*record, len(msgs)), byKey: map[eventKey]*fanOut{}}
	for i, m := range msgs {
		r := &record{msgID: m.MessageId}
		b.records[i] = r
		e, err := domain.ParseEvent([]byte(m.Body))
		if err == nil {
			err = domain.CheckEventTime(e, h.now())
		}
		if err == nil {
			err = h.eventTypes.CheckEvent(e, queue.FromService(m))
		}
		if err != nil {
			h.deadLetter(ctx, r, m.Body, err)
			continue
		}
		r.event = e
		b.valid = append(b.valid, r)
	}
	return b
}

// lookUp reports which valid events are stored already (so fanned out in full). When the
// lookup fails every valid record is marked failed: none is sent, all are retried.
func (h *Handler) lookUp(ctx context.Context, valid []*record) []bool {
	if len(valid) == 0 {
		return nil
	}
	evs := make([]domain.Event, len(valid))
	for i, r := range valid {
		evs[i] = r.event
	}
	stored, err := h.events.Stored(ctx, evs)
	if err != nil {
		h.log.WarnContext(ctx, "look up events failed; the messages will be retried", "events", len(valid), "error", err)
		for _, r := range valid {
			r.failed = true
		}
		return make([]bool, len(valid))
	}
	return stored
}

// group collects the events still to fan out, once per distinct event: not those whose
// lookup failed, nor those already stored (a copy that was fanned out in full).
func (b *batch) group(ctx context.Context, log *slog.Logger, stored []bool) {
	for i, r := range b.valid {
		switch {
		case r.failed:
			continue
		case stored[i]:
			log.DebugContext(ctx, "duplicate event already fanned out", eventAttrs(r)...)
			continue
		}
		k := keyOf(r.event)
		if f := b.byKey[k]; f != nil {
			f.records = append(f.records, r)
			continue
		}
		f := &fanOut{event: r.event, records: []*record{r}}
		b.byKey[k] = f
		b.pending = append(b.pending, f)
	}
}

// buildJobs builds the jobs of the whole batch, one per event and subscribed active
// endpoint, so they go out in full SendMessageBatch calls, and notes a skipped delivery
// for each subscribed disabled endpoint. An event whose tenant's endpoints cannot be
// listed, or whose payload cannot be rendered, is marked failed.
func (h *Handler) buildJobs(ctx context.Context, pending []*fanOut) []domain.DeliveryJob {
	listings := map[string]listing{}
	var jobs []domain.DeliveryJob
	for _, f := range pending {
		l, ok := listings[f.event.TenantID]
		if !ok {
			l = h.listEndpoints(ctx, f.event.TenantID)
			listings[f.event.TenantID] = l
		}
		if l.err != nil {
			f.failed = true
			h.log.WarnContext(ctx, "list endpoints failed; the message will be retried", fanAttrs(f, "error", l.err)...)
			continue
		}
		// The POST body is rendered once per event, not once per endpoint. A notification
		// about an endpoint goes to the tenant's other endpoints only.
		var payload []byte
		subject := domain.NotificationSubject(f.event)
		for _, ep := range l.endpoints {
			if !ep.Subscribes(f.event.Type) || ep.ID == subject {
				continue
			}
			if payload == nil {
				var err error
				if payload, err = f.event.Payload(); err != nil {
					f.failed = true
					h.log.ErrorContext(ctx, "render payload failed; the message will be retried", fanAttrs(f, "error", err)...)
					break
				}
			}
			jobs = append(jobs, domain.DeliveryJob{TenantID: f.event.TenantID, EndpointID: ep.ID, Event: f.event, Payload: payload})
			f.jobs++
		}
		now := h.now().UTC()
		for _, ep := range l.disabled {
			if ep.Subscribes(f.event.Type) && ep.ID != subject {
				f.skipped = append(f.skipped, domain.Attempt{
					TenantID: f.event.TenantID, EndpointID: ep.ID, EventID: f.event.ID, EventType: f.event.Type,
					OccurredAt: f.event.OccurredAt, Number: 1, Status: domain.DeliverySkipped,
					ErrorClass: domain.SkippedDisabled, AttemptedAt: now,
				})
			}
		}
	}
	return jobs
}

// recordSkipped writes, in one call, the skipped deliveries of the events fanned out: for
// each, the disabled endpoints that subscribe to it get a record in their delivery log
// saying why nothing was sent. A failure is logged, not retried: retrying the message
// would send its jobs again to the active endpoints.
func (h *Handler) recordSkipped(ctx context.Context, pending []*fanOut) {
	var skipped []domain.Attempt
	for _, f := range pending {
		if !f.failed {
			skipped = append(skipped, f.skipped...)
		}
	}
	if len(skipped) == 0 {
		return
	}
	if err := h.skips.Record(ctx, skipped); err != nil {
		h.log.ErrorContext(ctx, "record skipped deliveries to disabled endpoints", "skipped", len(skipped), "error", err)
		return
	}
	h.metrics.Add(metrics.DeliveriesSkipped, float64(len(skipped)))
}

// sendJobs enqueues the batch's jobs and marks failed every event with a job not enqueued.
func (h *Handler) sendJobs(ctx context.Context, b *batch, jobs []domain.DeliveryJob) {
	b.jobs = len(jobs)
	if len(jobs) == 0 {
		return
	}
	unsent, err := h.jobs.Send(ctx, jobs)
	if err != nil {
		h.log.WarnContext(ctx, "send delivery jobs failed", "jobs", len(jobs), "unsent", len(unsent), "error", err)
	}
	for _, j := range unsent {
		if f := b.byKey[keyOf(j.Event)]; f != nil && !f.failed {
			f.failed = true
			h.log.WarnContext(ctx, "delivery jobs not enqueued; the message will be retried", fanAttrs(f)...)
		}
	}
}

// store stores the fully sent events (conditional puts, in parallel), then fails every
// message of an event that is not stored. If storing fails the message is retried and fans
// out again: receivers then see a duplicate (same webhook-id), which is better than an
// event that a later copy would wrongly take as done.
func (h *Handler) store(ctx context.Context, pending []*fanOut) {
	parallel(len(pending), func(i int) {
		f := pending[i]
		if f.failed {
			return
		}
		duplicate, err := h.events.Put(ctx, f.event)
		if err != nil {
			f.failed = true
			h.log.WarnContext(ctx, "store event failed; the message will be retried", fanAttrs(f, "error", err)...)
			return
		}
		if !duplicate {
			h.metrics.Add(metrics.EventsIngested, 1)
		}
		h.log.DebugContext(ctx, "event fanned out", fanAttrs(f, "jobs", f.jobs, "duplicate", duplicate)...)
	})
	for _, f := range pending {
		if f.failed {
			for _, r := range f.records {
				r.failed = true
			}
		}
	}
}

// response reports the failed messages, in the batch's order, for SQS to retry.
func (b *batch) response() events.SQSEventResponse {
	var resp events.SQSEventResponse
	for _, r := range b.records {
		if r.failed {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.msgID})
		}
	}
	return resp
}

// deadLetter moves a malformed message to the ingest DLQ. Only when that fails is the
// message reported as failed, so SQS retries it and, after the last receive, redrives it.
func (h *Handler) deadLetter(ctx context.Context, r *record, body string, reason error) {
	if err := h.deadLetters.Send(ctx, body, reason.Error(), r.msgID); err != nil {
		r.failed = true
		h.log.ErrorContext(ctx, "dead-letter malformed event failed; the message will be retried",
			"message_id", r.msgID, "reason", reason.Error(), "error", err)
		return
	}
	h.metrics.Add(metrics.EventsRejected, 1)
	h.log.WarnContext(ctx, "malformed event dead-lettered", "message_id", r.msgID, "reason", reason.Error(), "bytes", len(body))
}

// listing is a tenant's endpoints, active and disabled, or why they could not be listed.
type listing struct {
	endpoints []domain.Endpoint // active
	disabled  []domain.Endpoint
	err       error
}

// listEndpoints lists every endpoint of the tenant, page by page.
func (h *Handler) listEndpoints(ctx context.Context, tenantID string) listing {
	var l listing
	after := ""
	for {
		page, more, err := h.endpoints.ListEndpoints(ctx, tenantID, endpointPageSize, after)
		if err != nil {
			return listing{err: err}
		}
		for _, ep := range page {
			if ep.Status == domain.StatusActive {
				l.endpoints = append(l.endpoints, ep)
			} else {
				l.disabled = append(l.disabled, ep)
			}
		}
		if !more || len(page) == 0 {
			return l
		}
		after = page[len(page)-1].ID
	}
}

// parallel runs fn(0..n-1) with at most storeConcurrency calls at a time.
func parallel(n int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	sem := make(chan struct{}, storeConcurrency)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(i)
		}()
	}
	wg.Wait()
}

// eventAttrs are the log attributes of a record: identifiers only, never the payload.
func eventAttrs(r *record, extra ...any) []any {
	return append([]any{"message_id", r.msgID, "event_id", r.event.ID, "tenant_id", r.event.TenantID,
		"type", r.event.Type, "occurred_at", r.event.OccurredAt.Format(time.RFC3339Nano)}, extra...)
}

// fanAttrs are the log attributes of an event being fanned out.
func fanAttrs(f *fanOut, extra ...any) []any {
	ids := make([]string, len(f.records))
	for i, r := range f.records {
		ids[i] = r.msgID
	}
	return append([]any{"message_ids", ids, "event_id", f.event.ID, "tenant_id", f.event.TenantID,
		"type", f.event.Type, "occurred_at", f.event.OccurredAt.Format(time.RFC3339Nano)}, extra...)
}
