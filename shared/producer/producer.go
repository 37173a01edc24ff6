// Package producer is the client platform producers use to publish events to the webhooks
// service's IngestQueue. It is the cheap way in: events travel ten to a SendMessageBatch
// call (one billed SQS request for up to 64 KiB), so a producer pays a tenth of a request
// per event instead of one, and the ingest function receives full batches.
//
//	p := producer.New(sqs.NewFromConfig(cfg), queueURL, producer.Options{})
//	defer p.Close()
//	err := p.Publish(ctx, domain.Event{ID: "evt_…", TenantID: "acme", Type: "export.done",
//		OccurredAt: time.Now(), Data: json.RawMessage(`{"rows":3}`)})
//
// Publish waits a short linger (20 ms by default) for more events to fill the batch, then
// returns once SQS has accepted the event. Entries SQS reports failed for a transient
// reason are sent again (three times, backing off from 50 ms); entries failed through the
// sender's fault are not. Every envelope is checked first with the ingest function's own
// rules (domain.ParseEvent, domain.CheckEventTime, the event-type catalog), so an event the
// service would refuse fails at Publish with the reason instead of ending in the IngestDLQ.
//
// Delivery is at least once: when a SendMessageBatch call fails outright, SQS may still
// have stored some of its messages, and a caller that retries may send an event twice. The
// ingest function de-duplicates on (tenant, occurred_at, id), so retrying is safe.
package producer

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

	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/eventtypes"
)

// SendMessageBatch limits: 10 entries; 256 KiB of bodies in all, the classic limit every
// queue accepts.
const (
	MaxBatchEntries = 10
	MaxBatchBytes   = 256 << 10
)

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("producer: closed")

// Options tunes a Producer; zero values take the defaults.
type Options struct {
	// Linger is how long the first event of a partial batch waits for others (20 ms).
	Linger time.Duration
	// Retries is how many times entries failed for a transient reason are sent again (3).
	Retries int
	// Backoff is the pause before the first retry, doubled for each next one (50 ms).
	Backoff time.Duration
	// Timeout bounds each SendMessageBatch call, SDK retries included (10 s).
	Timeout time.Duration
	// Concurrency is how many batch calls may be in flight at once (4).
	Concurrency int
	// Now is the clock the future-time check uses (time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Linger <= 0 {
		o.Linger = 20 * time.Millisecond
	}
	if o.Retries <= 0 {
		o.Retries = 3
	}
	if o.Backoff <= 0 {
		o.Backoff = 50 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Producer batches events to one queue. It is safe for concurrent use; Close it to send
// what is pending and stop its goroutine.
type Producer struct {
	sqs  *sqs.Client
	url  string
	opts Options

	mu     sync.RWMutex // held for reading while handing an event over, for writing by Close
	closed bool
	in     chan *pending
	done   chan struct{} // closed when the batching loop has returned
	sem    chan struct{}
	sends  sync.WaitGroup
}

// pending is one event waiting for its batch.
type pending struct {
	body string
	res  chan error
}

// New returns a producer sending to the queue at queueURL.
func New(client *sqs.Client, queueURL string, opts Options) *Producer {
	o := opts.withDefaults()
	p := &Producer{
		sqs: client, url: queueURL, opts: o,
		in: make(chan *pending), done: make(chan struct{}), sem: make(chan struct{}, o.Concurrency),
	}
	go p.loop()
	return p
}

// Envelope renders e as the ingest envelope ({"id","tenant_id","type","occurred_at","data"},
// occurred_at in UTC) and checks it with the ingest function's rules at now: the envelope's
// fields, occurred_at not in the future, the type declared in the event-type catalog
// (shared/eventtypes) for platform producers.
func Envelope(e domain.Event, now time.Time) ([]byte, error) {
	body, err := json.Marshal(struct {
		ID         string          `json:"id"`
		TenantID   string          `json:"tenant_id"`
		Type       string          `json:"type"`
		OccurredAt string          `json:"occurred_at"`
		Data       json.RawMessage `json:"data"`
	}{e.ID, e.TenantID, e.Type, e.OccurredAt.UTC().Format(time.RFC3339Nano), e.Data})
	if err != nil {
		return nil, domain.Invalid("data", "data is not valid JSON: %v", err)
	}
	parsed, err := domain.ParseEvent(body)
	if err == nil {
		err = domain.CheckEventTime(parsed, now)
	}
	if err == nil {
		err = eventtypes.Builtin().CheckEvent(parsed, false)
	}
	if err != nil {
		return nil, err
	}
	return body, nil
}

// Publish checks e, adds it to the next batch and waits until SQS accepted it. An invalid
// event is a *domain.Error of kind invalid naming the field; nothing is sent. When ctx ends
// first, Publish returns its error but the event may still be sent.
func (p *Producer) Publish(ctx context.Context, e domain.Event) error {
	body, err := Envelope(e, p.opts.Now())
	if err != nil {
		return err
	}
	pd := &pending{body: string(body), res: make(chan error, 1)}
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return ErrClosed
	}
	select {
	case p.in <- pd:
		p.mu.RUnlock()
	case <-ctx.Done():
		p.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-pd.res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close sends the events still waiting for their batch, waits for every call in flight,
// and makes later Publish calls fail with ErrClosed.
func (p *Producer) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.in)
	}
	p.mu.Unlock()
	<-p.done
	p.sends.Wait()
	return nil
}

// loop gathers events into batches: a batch leaves when it holds MaxBatchEntries events,
// when the next event would take it over MaxBatchBytes, or Linger after its first event.
func (p *Producer) loop() {
	defer close(p.done)
	var batch []*pending
	size := 0
	var timer *time.Timer
	var expired <-chan time.Time
	flush := func() {
		if timer != nil {
			timer.Stop()
			timer, expired = nil, nil
		}
		if len(batch) == 0 {
			return
		}
		b := batch
		batch, size = nil, 0
		p.sem <- struct{}{}
		p.sends.Add(1)
		go func() {
			defer func() { <-p.sem; p.sends.Done() }()
			p.send(b)
		}()
	}
	for {
		select {
		case pd, ok := <-p.in:
			if !ok {
				flush()
				return
			}
			if len(batch) > 0 && size+len(pd.body) > MaxBatchBytes {
				flush()
			}
			batch = append(batch, pd)
			size += len(pd.body)
			if len(batch) == MaxBatchEntries {
				flush()
			} else if timer == nil {
				timer = time.NewTimer(p.opts.Linger)
				expired = timer.C
			}
		case <-expired:
			timer, expired = nil, nil
			flush()
		}
	}
}

// send sends one batch, retrying the entries SQS failed for a transient reason, and answers
// every event of it.
func (p *Producer) send(batch []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.Timeout*time.Duration(p.opts.Retries+1))
	defer cancel()
	for attempt := 0; ; attempt++ {
		retry, err := p.sendOnce(ctx, batch)
		if err != nil {
			for _, pd := range batch {
				pd.res <- err
			}
			return
		}
		if len(retry) == 0 {
			return
		}
		if attempt == p.opts.Retries {
			for _, pd := range retry {
				pd.res <- fmt.Errorf("producer: SQS did not accept the event after %d attempts", attempt+1)
			}
			return
		}
		t := time.NewTimer(p.opts.Backoff << attempt)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			for _, pd := range retry {
				pd.res <- fmt.Errorf("producer: %w", ctx.Err())
			}
			return
		}
		batch = retry
	}
}

// sendOnce makes one SendMessageBatch call. It answers the accepted and the refused
// entries and returns those to send again; err is set when the call itself failed.
func (p *Producer) sendOnce(ctx context.Context, batch []*pending) (retry []*pending, err error) {
	in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(p.url), Entries: make([]types.SendMessageBatchRequestEntry, len(batch))}
	for i, pd := range batch {
		in.Entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(pd.body)}
	}
	callCtx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	out, err := p.sqs.SendMessageBatch(callCtx, in)
	if err != nil {
		return nil, fmt.Errorf("producer: send %d events: %w", len(batch), err)
	}
	answered := make([]bool, len(batch))
	for _, s := range out.Successful {
		if i, ok := entryIndex(s.Id, len(batch)); ok && !answered[i] {
			answered[i] = true
			batch[i].res <- nil
		}
	}
	for _, f := range out.Failed {
		i, ok := entryIndex(f.Id, len(batch))
		if !ok || answered[i] {
			continue
		}
		answered[i] = true
		if f.SenderFault {
			batch[i].res <- fmt.Errorf("producer: SQS refused the event: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
			continue
		}
		retry = append(retry, batch[i])
	}
	// An entry reported neither accepted nor failed is not known to be sent.
	for i, done := range answered {
		if !done {
			retry = append(retry, batch[i])
		}
	}
	return retry, nil
}

func entryIndex(id *string, n int) (int, bool) {
	i, err := strconv.Atoi(aws.ToString(id))
	return i, err == nil && i >= 0 && i < n
}
