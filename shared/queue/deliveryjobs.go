package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/datajetty/webhooks/shared/awserr"
	"github.com/datajetty/webhooks/shared/domain"
)

// SendMessageBatch limits: 10 entries, and a total payload we keep at the classic 256 KiB
// so a batch is accepted whatever the queue's configured maximum message size.
const (
	maxBatchEntries = 10
	maxBatchBytes   = 256 << 10
)

// Defaults of DeliveryJobs: retries of failed entries, the first retry's delay (doubled
// each time) and how many batch calls are in flight at once: 10, so the up to 100 jobs of a
// replay page (10 full batches) go out in one wave, not in two.
const (
	defaultRetries     = 3
	defaultBackoff     = 50 * time.Millisecond
	defaultConcurrency = 10
)

// Message attributes of a DeliveryQueue message (all of data type String). The body is the
// payload to POST; these carry what the consumer needs to route, sign and record it.
const (
	// JobAttrVersion is the message format: JobVersion.
	JobAttrVersion    = "job_version"
	JobAttrTenantID   = "tenant_id"
	JobAttrEndpointID = "endpoint_id"
	JobAttrEventID    = "event_id"
	JobAttrEventType  = "event_type"
	// JobAttrOccurredAt is the event's occurred_at, RFC 3339 with nanoseconds, UTC.
	JobAttrOccurredAt = "occurred_at"
	// JobAttrReplayID is present only on deliveries enqueued by a replay.
	JobAttrReplayID = "replay_id"
	// JobAttrResend is "true" on a delivery the tenant asked for again (POST …/resend);
	// absent otherwise. Consumers that do not know it ignore it.
	JobAttrResend = "resend"
)

// JobVersion is the JobAttrVersion of the format above. (Version 1, never labelled, was a
// JSON body holding the whole job and the event.)
const JobVersion = "2"

// EncodeDeliveryJob renders j as a DeliveryQueue message: the body is the payload to POST
// (j.Payload, or j.Event.Payload() when that is empty) and the routing fields are message
// attributes. It refuses a job its consumer would refuse.
func EncodeDeliveryJob(j domain.DeliveryJob) (body string, attrs map[string]types.MessageAttributeValue, err error) {
	switch {
	case j.TenantID == "" || j.EndpointID == "":
		return "", nil, fmt.Errorf("encode delivery job for event %s: tenant_id and endpoint_id are required", j.Event.ID)
	case j.Event.ID == "" || j.Event.Type == "" || j.Event.OccurredAt.IsZero():
		return "", nil, fmt.Errorf("encode delivery job for endpoint %s: event id, type and occurred_at are required", j.EndpointID)
	case j.Event.TenantID != j.TenantID:
		return "", nil, fmt.Errorf("encode delivery job for event %s: the event belongs to another tenant", j.Event.ID)
	}
	payload := j.Payload
	if len(payload) == 0 {
		if payload, err = j.Event.Payload(); err != nil {
			return "", nil, fmt.Errorf("encode delivery job: %w", err)
		}
	}
	n := 6
	if j.ReplayID != "" {
		n++
	}
	if j.Resend {
		n++
	}
	attrs = make(map[string]types.MessageAttributeValue, n)
	attrs[JobAttrVersion] = jobAttr(JobVersion)
	attrs[JobAttrTenantID] = jobAttr(j.TenantID)
	attrs[JobAttrEndpointID] = jobAttr(j.EndpointID)
	attrs[JobAttrEventID] = jobAttr(j.Event.ID)
	attrs[JobAttrEventType] = jobAttr(j.Event.Type)
	attrs[JobAttrOccurredAt] = jobAttr(j.Event.OccurredAt.UTC().Format(time.RFC3339Nano))
	if j.ReplayID != "" {
		attrs[JobAttrReplayID] = jobAttr(j.ReplayID)
	}
	if j.Resend {
		attrs[JobAttrResend] = jobAttr("true")
	}
	return string(payload), attrs, nil
}

func jobAttr(s string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(s)}
}

// ParseDeliveryMessage reads a DeliveryQueue message as Lambda hands it over: the routing
// fields from its message attributes, the payload (Payload) from its body, which is not
// decoded. The job's Event has no Data: the payload is already rendered.
func ParseDeliveryMessage(msg events.SQSMessage) (domain.DeliveryJob, error) {
	attr := func(name string) string {
		if a, ok := msg.MessageAttributes[name]; ok && a.StringValue != nil {
			return *a.StringValue
		}
		return ""
	}
	if v := attr(JobAttrVersion); v != JobVersion {
		if v == "" {
			return domain.DeliveryJob{}, errors.New("decode delivery job: no job_version attribute (not a version " + JobVersion + " job)")
		}
		return domain.DeliveryJob{}, fmt.Errorf("decode delivery job: job_version %q is not %s", v, JobVersion)
	}
	j := domain.DeliveryJob{
		TenantID:   attr(JobAttrTenantID),
		EndpointID: attr(JobAttrEndpointID),
		Event:      domain.Event{ID: attr(JobAttrEventID), Type: attr(JobAttrEventType)},
		ReplayID:   attr(JobAttrReplayID),
		Resend:     attr(JobAttrResend) == "true",
	}
	j.Event.TenantID = j.TenantID
	occurred := attr(JobAttrOccurredAt)
	switch {
	case j.TenantID == "" || j.EndpointID == "":
		return domain.DeliveryJob{}, errors.New("decode delivery job: tenant_id and endpoint_id are required")
	case j.Event.ID == "" || j.Event.Type == "" || occurred == "":
		return domain.DeliveryJob{}, errors.New("decode delivery job: event_id, event_type and occurred_at are required")
	case msg.Body == "":
		return domain.DeliveryJob{}, errors.New("decode delivery job: the body (the payload) is empty")
	}
	at, err := time.Parse(time.RFC3339Nano, occurred)
	if err != nil {
		return domain.DeliveryJob{}, fmt.Errorf("decode delivery job: occurred_at: %w", err)
	}
	j.Event.OccurredAt = at.UTC()
	j.Payload = []byte(msg.Body)
	return j, nil
}

// DeliveryJobs sends delivery jobs to the delivery queue.
type DeliveryJobs struct {
	sqs         *sqs.Client
	url         string
	retries     int
	backoff     time.Duration
	concurrency int
}

// NewDeliveryJobs returns a sender to the queue at queueURL.
func NewDeliveryJobs(client *sqs.Client, queueURL string) *DeliveryJobs {
	return &DeliveryJobs{sqs: client, url: queueURL, retries: defaultRetries, backoff: defaultBackoff, concurrency: defaultConcurrency}
}

// batchEntry is one job's message, with its index in the caller's slice as the batch entry id.
type batchEntry struct {
	index int
	body  string
	attrs map[string]types.MessageAttributeValue
	size  int // what the message counts toward the batch's size: body and attributes
}

// Send enqueues the jobs, one message each (EncodeDeliveryJob: the payload rendered once,
// here, as the body), with SendMessageBatch in full batches of 10 (fewer only when the
// messages' total size, bodies and attributes, requires it). Entries that SQS reports failed
// are retried, alone and again in full batches, up to three times with a short backoff;
// entries failed through the sender's fault (which a retry cannot fix) are not.
//
// It returns the jobs that were not enqueued. err is set when a call itself failed (after
// the SDK's own retries), classified by awserr; then every job not yet sent is in failed.
func (q *DeliveryJobs) Send(ctx context.Context, jobs []domain.DeliveryJob) ([]domain.DeliveryJob, error) {
	var failed []domain.DeliveryJob
	var encodeErr error
	pending := make([]batchEntry, 0, len(jobs))
	for i, j := range jobs {
		body, attrs, err := EncodeDeliveryJob(j)
		if err != nil {
			failed = append(failed, j)
			encodeErr = err
			continue
		}
		pending = append(pending, batchEntry{index: i, body: body, attrs: attrs, size: len(body) + attrsSize(attrs)})
	}
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 0 {
			if err := sleepCtx(ctx, q.backoff<<(attempt-1)); err != nil {
				return appendJobs(failed, jobs, pending), err
			}
		}
		retry, giveUp, err := q.sendAll(ctx, pending)
		failed = appendJobs(failed, jobs, giveUp)
		if err != nil {
			return appendJobs(failed, jobs, retry), err
		}
		if attempt == q.retries {
			failed = appendJobs(failed, jobs, retry)
			break
		}
		pending = retry
	}
	return failed, encodeErr
}

// sendAll sends the entries in batches, several calls at a time. It returns the entries to
// retry (failed for a transient reason, or never sent because a call failed), those to
// give up on (the sender's fault), and the first call error.
func (q *DeliveryJobs) sendAll(ctx context.Context, entries []batchEntry) (retry, giveUp []batchEntry, err error) {
	batches := chunkEntries(entries)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, q.concurrency))
	for _, b := range batches {
		sem <- struct{}{}
		mu.Lock()
		stop := err != nil
		if stop {
			retry = append(retry, b...)
		}
		mu.Unlock()
		if stop {
			<-sem
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			r, g, callErr := q.sendBatch(ctx, b)
			mu.Lock()
			defer mu.Unlock()
			retry, giveUp = append(retry, r...), append(giveUp, g...)
			if callErr != nil && err == nil {
				err = callErr
			}
		}()
	}
	wg.Wait()
	return retry, giveUp, err
}

// sendBatch makes one SendMessageBatch call.
func (q *DeliveryJobs) sendBatch(ctx context.Context, batch []batchEntry) (retry, giveUp []batchEntry, err error) {
	in := &sqs.SendMessageBatchInput{QueueUrl: &q.url, Entries: make([]types.SendMessageBatchRequestEntry, len(batch))}
	byID := make(map[string]batchEntry, len(batch))
	for i, e := range batch {
		id := strconv.Itoa(e.index)
		byID[id] = e
		in.Entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(e.body), MessageAttributes: e.attrs}
	}
	out, err := q.sqs.SendMessageBatch(ctx, in)
	if err != nil {
		return batch, nil, awserr.Classify(dependency, fmt.Errorf("send %d delivery jobs: %w", len(batch), err))
	}
	for _, f := range out.Failed {
		e, ok := byID[aws.ToString(f.Id)]
		if !ok {
			continue
		}
		delete(byID, aws.ToString(f.Id))
		if f.SenderFault {
			giveUp = append(giveUp, e)
		} else {
			retry = append(retry, e)
		}
	}
	// An entry reported neither successful nor failed is not known to be sent.
	ok := make(map[string]bool, len(out.Successful))
	for _, s := range out.Successful {
		ok[aws.ToString(s.Id)] = true
	}
	for id, e := range byID {
		if !ok[id] {
			retry = append(retry, e)
		}
	}
	return retry, giveUp, nil
}

// chunkEntries splits entries into batches of at most maxBatchEntries and maxBatchBytes
// (bodies plus attributes, as SQS counts them).
func chunkEntries(entries []batchEntry) [][]batchEntry {
	var out [][]batchEntry
	var cur []batchEntry
	size := 0
	for _, e := range entries {
		if len(cur) == maxBatchEntries || (len(cur) > 0 && size+e.size > maxBatchBytes) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, e)
		size += e.size
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func appendJobs(dst []domain.DeliveryJob, jobs []domain.DeliveryJob, entries []batchEntry) []domain.DeliveryJob {
	for _, e := range entries {
		dst = append(dst, jobs[e.index])
	}
	return dst
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return awserr.Classify(dependency, ctx.Err())
	}
}
