package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/datajetty/webhooks/shared/awserr"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/ingest"
)

var _ ingest.JobSender = (*DeliveryJobs)(nil)

// SendMessageBatch limits: 10 entries, and a total payload we keep at the classic 256 KiB
// so a batch is accepted whatever the queue's configured maximum message size.
const (
	maxBatchEntries = 10
	maxBatchBytes   = 256 << 10
)

// Defaults of DeliveryJobs: retries of failed entries, the first retry's delay (doubled
// each time) and how many batch calls are in flight at once.
const (
	defaultRetries     = 3
	defaultBackoff     = 50 * time.Millisecond
	defaultConcurrency = 8
)

// ParseDeliveryJob decodes and checks a delivery queue message body.
func ParseDeliveryJob(body string) (domain.DeliveryJob, error) {
	var j domain.DeliveryJob
	if err := json.Unmarshal([]byte(body), &j); err != nil {
		return domain.DeliveryJob{}, fmt.Errorf("decode delivery job: %w", err)
	}
	switch {
	case j.TenantID == "" || j.EndpointID == "":
		return domain.DeliveryJob{}, errors.New("decode delivery job: tenant_id and endpoint_id are required")
	case j.Event.ID == "" || j.Event.Type == "" || j.Event.OccurredAt.IsZero():
		return domain.DeliveryJob{}, errors.New("decode delivery job: event id, type and occurred_at are required")
	case j.Event.TenantID != j.TenantID:
		return domain.DeliveryJob{}, errors.New("decode delivery job: the event belongs to another tenant")
	}
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
}

// Send enqueues the jobs, one JSON message each, with SendMessageBatch in full batches of
// 10 (fewer only when the bodies' total size requires it). Entries that SQS reports failed
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
		b, err := json.Marshal(j)
		if err != nil {
			failed = append(failed, j)
			encodeErr = fmt.Errorf("encode delivery job for event %s: %w", j.Event.ID, err)
			continue
		}
		pending = append(pending, batchEntry{index: i, body: string(b)})
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
		in.Entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(e.body)}
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

// chunkEntries splits entries into batches of at most maxBatchEntries and maxBatchBytes.
func chunkEntries(entries []batchEntry) [][]batchEntry {
	var out [][]batchEntry
	var cur []batchEntry
	size := 0
	for _, e := range entries {
		if len(cur) == maxBatchEntries || (len(cur) > 0 && size+len(e.body) > maxBatchBytes) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, e)
		size += len(e.body)
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
