// Package localsqs runs a Lambda SQS handler against a queue the way Lambda's SQS event
// source mapping does, for local development (make dev) and end-to-end tests. It is never
// used in AWS, where the event source mapping itself does this work.
//
// What it reproduces:
//
//   - batches: one ReceiveMessage of up to BatchSize (≤ 10) messages, with every system
//     attribute and message attribute, turned into an events.SQSEvent shaped like the one
//     Lambda sends (messageId, receiptHandle, body, md5OfBody, attributes,
//     messageAttributes, eventSource "aws:sqs", eventSourceARN, awsRegion);
//   - the invocation timeout: the handler's context carries a deadline Timeout away, like a
//     Lambda function's timeout, and an invocation that outlives it counts as failed;
//   - ReportBatchItemFailures: after a successful invocation every message not listed in
//     BatchItemFailures is deleted (DeleteMessageBatch); listed ones stay in the queue and
//     come back when their visibility timeout (the queue's, or whatever the handler set with
//     ChangeMessageVisibility) expires;
//   - failed invocations: when the handler returns an error, panics, times out, or reports a
//     BatchItemFailure whose itemIdentifier is empty or not a message of the batch, nothing is
//     deleted and the whole batch comes back after its visibility timeout;
//   - SQS redrive stays SQS's business: a message received more than the queue's
//     maxReceiveCount times is moved to the dead-letter queue by the queue itself (see the
//     package tests for how the emulator does it).
//
// What it does not: Lambda scales pollers up to many concurrent invocations and may batch
// over a window; a Poller invokes one batch at a time, which is enough locally. A handler
// that ignores its context is not killed at the deadline (Go cannot stop a goroutine): the
// Poller logs a warning, waits for it, and then treats the invocation as timed out.
package localsqs

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Defaults for the zero values of the Poller's settings.
const (
	// MaxBatchSize is SQS's ReceiveMessage limit, and the default BatchSize.
	MaxBatchSize = 10
	// DefaultTimeout is the default invocation timeout (Lambda's default is 3 s; 30 s leaves
	// room for a debugger-free but slow local run).
	DefaultTimeout = 30 * time.Second
	// DefaultIdleWait is the pause after a receive that returned no message.
	DefaultIdleWait = 200 * time.Millisecond
)

// deleteTimeout bounds the DeleteMessageBatch after an invocation. It runs even when the
// caller's context has ended meanwhile: Lambda acknowledges a batch its function finished.
const deleteTimeout = 10 * time.Second

// maxErrorWait caps the back-off of Run after consecutive receive errors.
const maxErrorWait = 5 * time.Second

// ErrInvocationFailed is wrapped by Once's error when the handler returned an error,
// panicked, ran past its timeout or returned an invalid batch response: the whole batch was
// left in the queue.
var ErrInvocationFailed = errors.New("localsqs: invocation failed")

// Handler is a Lambda SQS handler that reports partial batch failures
// (FunctionResponseTypes: ReportBatchItemFailures).
type Handler func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// Poller feeds one queue to one handler. Set the exported fields, then call Run or Once; do
// not change them afterwards. A Poller is safe for concurrent use, though one Run per queue
// is the intended use.
type Poller struct {
	// Client is the SQS client (pointed at the emulator). Required.
	Client *sqs.Client
	// QueueURL is the queue to consume. Required.
	QueueURL string
	// Handler is invoked with each batch. Required.
	Handler Handler
	// BatchSize is the most messages per invocation, 1 to 10; 0 means 10.
	BatchSize int
	// Timeout is the invocation timeout, set as the handler context's deadline; 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// IdleWait is how long Run sleeps after an empty receive; 0 means DefaultIdleWait.
	// Receives are short polls (WaitTimeSeconds 0) so that an idle poller does not hold one
	// of the emulator's threads.
	IdleWait time.Duration
	// Logger receives one line per invocation and every failure; nil means slog.Default().
	Logger *slog.Logger

	mu  sync.Mutex
	arn string // the queue's ARN, once known
}

// Run polls until ctx is done, invoking the handler with each non-empty batch. Failed
// invocations and AWS errors are logged and do not stop it. It returns nil when ctx ends,
// and an error only for an invalid Poller.
func (p *Poller) Run(ctx context.Context) error {
	if err := p.validate(); err != nil {
		return err
	}
	log := p.logger()
	errWait := p.idleWait()
	for ctx.Err() == nil {
		n, err := p.Once(ctx)
		wait := time.Duration(0)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && !errors.Is(err, ErrInvocationFailed):
			// An AWS error (emulator down, queue deleted…): back off, without flooding the log.
			log.Error("localsqs: poll failed", "queue", p.queueName(), "error", err)
			wait = errWait
			errWait = min(errWait*2, maxErrorWait)
		default:
			// Once has already logged a failed invocation.
			errWait = p.idleWait()
			if n == 0 {
				wait = p.idleWait()
			}
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
	}
	return nil
}

// Once receives one batch and, when it is not empty, invokes the handler and acknowledges
// the batch as Lambda would. It returns the number of messages the handler was invoked with
// (0 when the queue had none visible). The error wraps ErrInvocationFailed when the
// invocation failed (nothing was deleted); any other error is an SQS failure.
func (p *Poller) Once(ctx context.Context) (handled int, err error) {
	if err := p.validate(); err != nil {
		return 0, err
	}
	arn, err := p.queueARN(ctx)
	if err != nil {
		return 0, err
	}
	out, err := p.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(p.QueueURL),
		MaxNumberOfMessages: int32(p.batchSize()),
		// Short poll (see queueARN for queues that set a default wait): an idle poller must
		// not hold one of the emulator's threads; Run sleeps IdleWait instead.
		WaitTimeSeconds:             0,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		return 0, fmt.Errorf("localsqs: receive from %s: %w", p.queueName(), err)
	}
	if len(out.Messages) == 0 {
		return 0, nil
	}
	event := NewEvent(out.Messages, arn, regionOf(arn, p.Client.Options().Region))
	n := len(event.Records)
	// What to acknowledge is decided on a copy: the handler owns the event it is given.
	received := make([]receipt, n)
	for i, r := range event.Records {
		received[i] = receipt{id: r.MessageId, handle: r.ReceiptHandle}
	}

	log := p.logger().With("queue", p.queueName(), "messages", n)
	start := time.Now()
	resp, err := p.invoke(ctx, event, log)
	took := time.Since(start).Round(time.Millisecond)
	if err == nil {
		err = checkResponse(received, resp)
	}
	if err != nil {
		log.Warn("localsqs: invocation failed; the whole batch will be retried after its visibility timeout",
			"duration", took, "error", err)
		return n, fmt.Errorf("%w: %w", ErrInvocationFailed, err)
	}

	failed := make(map[string]bool, len(resp.BatchItemFailures))
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	var done []receipt
	for _, r := range received {
		if !failed[r.id] {
			done = append(done, r)
		}
	}
	log.Info("localsqs: invoked", "failed", len(failed), "duration", took)
	if err := p.delete(ctx, done); err != nil {
		return n, err
	}
	return n, nil
}

// invoke runs the handler with a deadline, turning a panic into an error and a late return
// into a timeout.
func (p *Poller) invoke(ctx context.Context, event events.SQSEvent, log *slog.Logger) (events.SQSEventResponse, error) {
	timeout := p.timeout()
	ictx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Handlers that log the request id find one, as in Lambda.
	ictx = lambdacontext.NewContext(ictx, &lambdacontext.LambdaContext{AwsRequestID: requestID()})

	type result struct {
		resp events.SQSEventResponse
		err  error
		late error // the invocation context's error when the handler returned
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if v := recover(); v != nil {
				log.Error("localsqs: handler panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				r = result{err: fmt.Errorf("handler panicked: %v", v)}
			}
			ch <- r
		}()
		r.resp, r.err = p.Handler(ictx, event)
		r.late = ictx.Err()
	}()

	var r result
	select {
	case r = <-ch:
	case <-ictx.Done():
		if ctx.Err() == nil {
			log.Warn("localsqs: handler is still running past its timeout (Lambda would have stopped it); waiting for it",
				"timeout", timeout)
		}
		r = <-ch
	}
	if r.err != nil {
		return r.resp, r.err
	}
	// Whatever it returns, an invocation that ran past its deadline failed, as in Lambda. An
	// invocation cut short by the caller's context is treated the same way: it is the local
	// equivalent of the function being stopped.
	if r.late != nil {
		if errors.Is(r.late, context.DeadlineExceeded) && ctx.Err() == nil {
			return r.resp, fmt.Errorf("task timed out after %s", timeout)
		}
		return r.resp, fmt.Errorf("invocation interrupted: %w", context.Cause(ctx))
	}
	return r.resp, nil
}

// requestID returns a random UUID-formatted id.
func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// checkResponse rejects a batch response Lambda would treat as a complete failure: a
// BatchItemFailure whose itemIdentifier is empty or not the id of a message in the batch.
func checkResponse(received []receipt, resp events.SQSEventResponse) error {
	if len(resp.BatchItemFailures) == 0 {
		return nil
	}
	ids := make(map[string]bool, len(received))
	for _, r := range received {
		ids[r.id] = true
	}
	for _, f := range resp.BatchItemFailures {
		if f.ItemIdentifier == "" {
			return errors.New("invalid batch response: empty itemIdentifier")
		}
		if !ids[f.ItemIdentifier] {
			return fmt.Errorf("invalid batch response: itemIdentifier %q is not a message of the batch", f.ItemIdentifier)
		}
	}
	return nil
}

// receipt identifies a received message.
type receipt struct{ id, handle string }

// delete acknowledges msgs with DeleteMessageBatch (at most 10 per call).
func (p *Poller) delete(ctx context.Context, msgs []receipt) error {
	if len(msgs) == 0 {
		return nil
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
	defer cancel()
	var errs []error
	for start := 0; start < len(msgs); start += MaxBatchSize {
		chunk := msgs[start:min(start+MaxBatchSize, len(msgs))]
		entries := make([]types.DeleteMessageBatchRequestEntry, len(chunk))
		for i, m := range chunk {
			entries[i] = types.DeleteMessageBatchRequestEntry{
				Id:            aws.String(strconv.Itoa(start + i)),
				ReceiptHandle: aws.String(m.handle),
			}
		}
		out, err := p.Client.DeleteMessageBatch(dctx, &sqs.DeleteMessageBatchInput{
			QueueUrl: aws.String(p.QueueURL),
			Entries:  entries,
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range out.Failed {
			id := aws.ToString(f.Id)
			if i, err := strconv.Atoi(id); err == nil && i >= 0 && i < len(msgs) {
				id = msgs[i].id
			}
			errs = append(errs, fmt.Errorf("message %s: %s: %s", id, aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("localsqs: delete from %s: %w", p.queueName(), errors.Join(errs...))
	}
	return nil
}

// queueARN returns the queue's ARN, asking SQS the first time (a failure is not cached).
func (p *Poller) queueARN(ctx context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.arn != "" {
		return p.arn, nil
	}
	out, err := p.Client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(p.QueueURL),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameQueueArn, types.QueueAttributeNameReceiveMessageWaitTimeSeconds,
		},
	})
	if err != nil {
		return "", fmt.Errorf("localsqs: queue ARN of %s: %w", p.queueName(), err)
	}
	arn := out.Attributes[string(types.QueueAttributeNameQueueArn)]
	if arn == "" {
		return "", fmt.Errorf("localsqs: queue %s has no QueueArn attribute", p.queueName())
	}
	// The SDK omits a zero WaitTimeSeconds from the request, so a queue configured for long
	// polling long-polls here too. Say so rather than surprise anyone.
	if w := out.Attributes[string(types.QueueAttributeNameReceiveMessageWaitTimeSeconds)]; w != "" && w != "0" {
		p.logger().Warn("localsqs: the queue's ReceiveMessageWaitTimeSeconds applies: receives long-poll",
			"queue", p.queueName(), "seconds", w)
	}
	p.arn = arn
	return arn, nil
}

// NewEvent builds the event Lambda's SQS event source would send for msgs, received from
// the queue queueARN; region is the records' awsRegion ("": the region in queueARN).
// Received messages must carry their system attributes (MessageSystemAttributeNames All)
// and message attributes (MessageAttributeNames All) for the records to be complete.
func NewEvent(msgs []types.Message, queueARN, region string) events.SQSEvent {
	if region == "" {
		region = regionOf(queueARN, "")
	}
	records := make([]events.SQSMessage, len(msgs))
	for i, m := range msgs {
		records[i] = newRecord(m, queueARN, region)
	}
	return events.SQSEvent{Records: records}
}

func newRecord(m types.Message, queueARN, region string) events.SQSMessage {
	body := aws.ToString(m.Body)
	md5OfBody := aws.ToString(m.MD5OfBody)
	if md5OfBody == "" {
		sum := md5.Sum([]byte(body))
		md5OfBody = hex.EncodeToString(sum[:])
	}
	// Lambda always sends both maps, empty when there is nothing in them.
	attrs := make(map[string]string, len(m.Attributes))
	for k, v := range m.Attributes {
		attrs[k] = v
	}
	mattrs := make(map[string]events.SQSMessageAttribute, len(m.MessageAttributes))
	for k, v := range m.MessageAttributes {
		mattrs[k] = convertAttribute(v)
	}
	return events.SQSMessage{
		MessageId:              aws.ToString(m.MessageId),
		ReceiptHandle:          aws.ToString(m.ReceiptHandle),
		Body:                   body,
		Md5OfBody:              md5OfBody,
		Md5OfMessageAttributes: aws.ToString(m.MD5OfMessageAttributes),
		Attributes:             attrs,
		MessageAttributes:      mattrs,
		EventSourceARN:         queueARN,
		EventSource:            "aws:sqs",
		AWSRegion:              region,
	}
}

// convertAttribute maps an SQS message attribute to Lambda's form, where the list fields
// are always present (empty arrays in the JSON event).
func convertAttribute(v types.MessageAttributeValue) events.SQSMessageAttribute {
	a := events.SQSMessageAttribute{
		DataType:         aws.ToString(v.DataType),
		StringValue:      v.StringValue,
		BinaryValue:      v.BinaryValue,
		StringListValues: v.StringListValues,
		BinaryListValues: v.BinaryListValues,
	}
	if a.StringListValues == nil {
		a.StringListValues = []string{}
	}
	if a.BinaryListValues == nil {
		a.BinaryListValues = [][]byte{}
	}
	return a
}

// regionOf returns the region field of an ARN (arn:partition:service:region:account:name),
// or fallback.
func regionOf(arn, fallback string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 && parts[3] != "" {
		return parts[3]
	}
	return fallback
}

func (p *Poller) validate() error {
	switch {
	case p.Client == nil:
		return errors.New("localsqs: Poller.Client is nil")
	case p.QueueURL == "":
		return errors.New("localsqs: Poller.QueueURL is empty")
	case p.Handler == nil:
		return errors.New("localsqs: Poller.Handler is nil")
	case p.BatchSize < 0 || p.BatchSize > MaxBatchSize:
		return fmt.Errorf("localsqs: Poller.BatchSize %d is outside 1..%d", p.BatchSize, MaxBatchSize)
	}
	return nil
}

func (p *Poller) batchSize() int {
	if p.BatchSize == 0 {
		return MaxBatchSize
	}
	return p.BatchSize
}

func (p *Poller) timeout() time.Duration {
	if p.Timeout <= 0 {
		return DefaultTimeout
	}
	return p.Timeout
}

func (p *Poller) idleWait() time.Duration {
	if p.IdleWait <= 0 {
		return DefaultIdleWait
	}
	return p.IdleWait
}

func (p *Poller) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.Default()
	}
	return p.Logger
}

// queueName is the last path segment of the queue URL, for logs and errors.
func (p *Poller) queueName() string {
	return p.QueueURL[strings.LastIndexByte(p.QueueURL, '/')+1:]
}
