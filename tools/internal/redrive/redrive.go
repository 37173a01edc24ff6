// Package redrive moves the messages of a dead-letter queue back to a source queue, without
// ever losing one.
//
// Two methods:
//
//   - SQS's own message move task (StartMessageMoveTask), where the service supports it: SQS
//     moves the messages itself, and ListMessageMoveTasks reports progress. Interrupting
//     cancels the task (CancelMessageMoveTask); what was moved stays moved, the rest stays in
//     the DLQ.
//   - Receive → send → delete, in batches of 10 and in that order: a message is deleted from
//     the DLQ only after SendMessageBatch reported it stored in the source queue. Bodies and
//     every message attribute (including the reason/source_message_id attributes the ingest
//     function adds when it dead-letters a malformed event: consumers ignore unknown
//     attributes, and an operator looking at a message that fails again still sees why it
//     failed first) are copied as they are, and so is the AWSTraceHeader system attribute.
//     An interruption never splits a batch: the batch in flight is sent and deleted, then
//     the run stops. If a delete fails, the message is in both queues (it comes back to the
//     DLQ after the visibility timeout): at-least-once, never lost. Messages that could not
//     be sent are made visible in the DLQ again at once. A run moves at most the messages
//     the DLQ held when it started, and each body at most once, so that messages failing
//     again at once (and dead-lettered anew while it runs) do not go round in circles.
//
// MethodAuto tries the move task and falls back to receive → send → delete when the
// endpoint does not offer it (the moto emulator answers StartMessageMoveTask with HTTP 500
// "not implemented"), or when Max is set (a move task cannot stop after N messages).
package redrive

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// Client is the part of the SQS API redrive uses; *sqs.Client implements it.
type Client interface {
	GetQueueUrl(context.Context, *sqs.GetQueueUrlInput, ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	ListQueues(context.Context, *sqs.ListQueuesInput, ...func(*sqs.Options)) (*sqs.ListQueuesOutput, error)
	ListDeadLetterSourceQueues(context.Context, *sqs.ListDeadLetterSourceQueuesInput, ...func(*sqs.Options)) (*sqs.ListDeadLetterSourceQueuesOutput, error)
	ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	DeleteMessageBatch(context.Context, *sqs.DeleteMessageBatchInput, ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(context.Context, *sqs.ChangeMessageVisibilityBatchInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
	StartMessageMoveTask(context.Context, *sqs.StartMessageMoveTaskInput, ...func(*sqs.Options)) (*sqs.StartMessageMoveTaskOutput, error)
	ListMessageMoveTasks(context.Context, *sqs.ListMessageMoveTasksInput, ...func(*sqs.Options)) (*sqs.ListMessageMoveTasksOutput, error)
	CancelMessageMoveTask(context.Context, *sqs.CancelMessageMoveTaskInput, ...func(*sqs.Options)) (*sqs.CancelMessageMoveTaskOutput, error)
}

var _ Client = (*sqs.Client)(nil)

// Method is how messages are moved.
type Method string

// Methods.
const (
	// MethodAuto uses MethodTask where available, else MethodReceive.
	MethodAuto Method = "auto"
	// MethodTask is SQS's StartMessageMoveTask.
	MethodTask Method = "task"
	// MethodReceive is receive → send → delete, done by this process.
	MethodReceive Method = "receive"
)

// ParseMethod parses a -method flag value.
func ParseMethod(s string) (Method, error) {
	switch m := Method(s); m {
	case MethodAuto, MethodTask, MethodReceive:
		return m, nil
	}
	return "", fmt.Errorf("unknown method %q (want auto, task or receive)", s)
}

// batchSize is SQS's limit for ReceiveMessage, SendMessageBatch and DeleteMessageBatch.
const batchSize = 10

// Defaults of Options.
const (
	DefaultVisibilityTimeout = 2 * time.Minute
	DefaultWaitTime          = 2 * time.Second
	DefaultPollInterval      = 2 * time.Second
	// batchDeadline bounds the finishing of a batch once it was received, interrupted or not.
	batchDeadline = time.Minute
)

// Options says what to move where.
type Options struct {
	// DLQ and Source are queue URLs: messages move from DLQ to Source.
	DLQ, Source string
	// Method defaults to MethodAuto.
	Method Method
	// Max stops after this many messages (0: until the DLQ is empty). It needs MethodReceive
	// (MethodAuto picks it).
	Max int
	// VisibilityTimeout hides a received batch from other consumers of the DLQ while it is
	// moved; it is also how long a message whose delete failed stays hidden there.
	VisibilityTimeout time.Duration
	// WaitTime is the long poll of each receive (whole seconds, at most 20 s). A long poll that
	// returns nothing means the DLQ has no visible message left, and ends the run.
	WaitTime time.Duration
	// PollInterval is how often a move task's progress is read.
	PollInterval time.Duration
	// Progress, if set, is called after each batch (MethodReceive) or progress poll
	// (MethodTask).
	Progress func(Progress)
	// Logf, if set, receives notes worth showing an operator (fallbacks, cancellations).
	Logf func(format string, args ...any)
}

// Progress is a report on a running redrive.
type Progress struct {
	Method Method
	// Moved is how many messages are in the source queue so far.
	Moved int64
	// Total is an estimate of how many will be moved (the DLQ's ApproximateNumberOfMessages
	// at the start, capped by Max, or the task's own estimate); 0 when unknown.
	Total int64
	// Status is the move task's status (RUNNING, COMPLETED, ...); empty for MethodReceive.
	Status string
}

// Result is what a run did.
type Result struct {
	Method Method
	// Moved counts messages now in the source queue.
	Moved int64
	// NotDeleted counts messages sent to the source whose delete from the DLQ failed: they
	// are in both queues, and a later redrive would deliver them twice.
	NotDeleted int
	// Returned counts messages received but not sent (send failed): they were made visible
	// in the DLQ again.
	Returned int
	// CameBack counts receives of a body this run had already moved: the message failed
	// again and was dead-lettered anew. It was left in the DLQ.
	CameBack int
	// TaskHandle identifies the move task (MethodTask).
	TaskHandle string
}

// Run moves messages from o.DLQ to o.Source. It returns ctx's error when interrupted, with
// the Result of what was done until then.
func Run(ctx context.Context, c Client, o Options) (Result, error) {
	if o.DLQ == "" || o.Source == "" {
		return Result{}, errors.New("redrive: DLQ and Source are required")
	}
	if o.DLQ == o.Source {
		return Result{}, errors.New("redrive: DLQ and Source are the same queue")
	}
	if o.Method == "" {
		o.Method = MethodAuto
	}
	if _, err := ParseMethod(string(o.Method)); err != nil {
		return Result{}, fmt.Errorf("redrive: %w", err)
	}
	if o.Max < 0 {
		return Result{}, errors.New("redrive: Max must not be negative")
	}
	if o.Max > 0 && o.Method == MethodTask {
		return Result{}, errors.New("redrive: a move task cannot stop after Max messages; use the receive method")
	}
	if o.VisibilityTimeout <= 0 {
		o.VisibilityTimeout = DefaultVisibilityTimeout
	}
	if o.WaitTime <= 0 {
		o.WaitTime = DefaultWaitTime
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Progress == nil {
		o.Progress = func(Progress) {}
	}

	if o.Method == MethodAuto && o.Max > 0 {
		o.Logf("-max set: moving with receive → send → delete (a move task cannot stop after N messages)")
		o.Method = MethodReceive
	}
	if o.Method != MethodReceive {
		res, started, err := runTask(ctx, c, o)
		if started || o.Method == MethodTask || ctx.Err() != nil {
			return res, err
		}
		o.Logf("StartMessageMoveTask is not available here (%v); moving with receive → send → delete instead", err)
	}
	return runReceive(ctx, c, o)
}

// ---------------------------------------------------------------- move task

// runTask starts a move task and follows it to its end. started reports whether a task was
// started (false: the caller may fall back).
func runTask(ctx context.Context, c Client, o Options) (res Result, started bool, err error) {
	res.Method = MethodTask
	dlqARN, err := QueueARN(ctx, c, o.DLQ)
	if err != nil {
		return res, false, err
	}
	srcARN, err := QueueARN(ctx, c, o.Source)
	if err != nil {
		return res, false, err
	}
	// One attempt: an endpoint without the API answers 5xx, and retrying that only delays the
	// fallback. Nothing is moved by a failed start.
	out, err := c.StartMessageMoveTask(ctx, &sqs.StartMessageMoveTaskInput{
		SourceArn: aws.String(dlqARN), DestinationArn: aws.String(srcARN),
	}, func(so *sqs.Options) { so.RetryMaxAttempts = 1 })
	if err != nil {
		return res, false, fmt.Errorf("start message move task: %w", err)
	}
	res.TaskHandle = aws.ToString(out.TaskHandle)
	o.Logf("started message move task %s", res.TaskHandle)
	started = true

	tick := time.NewTicker(o.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return cancelTask(ctx, c, o, res, dlqARN)
		case <-tick.C:
		}
		e, err := currentTask(ctx, c, dlqARN, res.TaskHandle)
		if err != nil {
			if ctx.Err() != nil {
				return cancelTask(ctx, c, o, res, dlqARN)
			}
			return res, true, fmt.Errorf("list message move tasks: %w", err)
		}
		if e == nil {
			continue // not listed yet
		}
		res.Moved = e.ApproximateNumberOfMessagesMoved
		status := aws.ToString(e.Status)
		o.Progress(Progress{Method: MethodTask, Moved: res.Moved, Total: aws.ToInt64(e.ApproximateNumberOfMessagesToMove), Status: status})
		switch status {
		case "COMPLETED":
			return res, true, nil
		case "FAILED":
			return res, true, fmt.Errorf("message move task failed: %s (messages not moved are still in the DLQ)", aws.ToString(e.FailureReason))
		case "CANCELLED", "CANCELLING":
			return res, true, errors.New("message move task was cancelled by someone else (messages not moved are still in the DLQ)")
		}
	}
}

// currentTask returns the task started by this run: the entry with our handle while it
// runs, else (finished tasks carry no handle) the most recent one, which ListMessageMoveTasks
// lists first.
func currentTask(ctx context.Context, c Client, dlqARN, handle string) (*types.ListMessageMoveTasksResultEntry, error) {
	out, err := c.ListMessageMoveTasks(ctx, &sqs.ListMessageMoveTasksInput{SourceArn: aws.String(dlqARN), MaxResults: aws.Int32(10)})
	if err != nil {
		return nil, err
	}
	for i := range out.Results {
		if aws.ToString(out.Results[i].TaskHandle) == handle {
			return &out.Results[i], nil
		}
	}
	if len(out.Results) > 0 && aws.ToString(out.Results[0].Status) != "RUNNING" {
		return &out.Results[0], nil
	}
	return nil, nil
}

func cancelTask(ctx context.Context, c Client, o Options, res Result, dlqARN string) (Result, bool, error) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchDeadline)
	defer cancel()
	out, err := c.CancelMessageMoveTask(dctx, &sqs.CancelMessageMoveTaskInput{TaskHandle: aws.String(res.TaskHandle)})
	switch {
	case err != nil:
		o.Logf("could not cancel move task %s (%v): it goes on moving messages; see ListMessageMoveTasks", res.TaskHandle, err)
	default:
		res.Moved = out.ApproximateNumberOfMessagesMoved
		o.Logf("cancelled move task %s after about %d messages; the rest stay in the DLQ", res.TaskHandle, res.Moved)
	}
	if e, lerr := currentTask(dctx, c, dlqARN, res.TaskHandle); lerr == nil && e != nil {
		res.Moved = e.ApproximateNumberOfMessagesMoved
	}
	return res, true, ctx.Err()
}

// ---------------------------------------------------------------- receive → send → delete

// runReceive moves at most the messages the DLQ held when it started (or Max): like a move
// task, a run does not chase messages that arrive while it runs. And it moves a body at most
// once: a message that fails again at once (the ingest function dead-letters a malformed
// event straight away) comes back to the DLQ during the run, and is left there, hidden until
// its visibility timeout, instead of going round in circles.
func runReceive(ctx context.Context, c Client, o Options) (Result, error) {
	res := Result{Method: MethodReceive}
	var limit int64 // 0: until the DLQ is empty
	if n, err := Count(ctx, c, o.DLQ); err == nil {
		limit = n.Visible
	}
	if o.Max > 0 && (limit == 0 || int64(o.Max) < limit) {
		limit = int64(o.Max)
	}
	fifo := strings.HasSuffix(o.Source, ".fifo")
	moved := map[[sha256.Size]byte]bool{}
	for {
		if limit > 0 && res.Moved >= limit {
			return res, nil
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		n := int64(batchSize)
		if limit > 0 {
			n = min(n, limit-res.Moved)
		}
		// The receive is not cut short by an interruption (it lasts at most WaitTime): a
		// response lost to one would leave its messages hidden in the DLQ until their
		// visibility timeout. What it brings after an interruption is handed back at once.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), o.WaitTime+batchDeadline)
		out, err := c.ReceiveMessage(rctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(o.DLQ),
			MaxNumberOfMessages:         int32(n),
			WaitTimeSeconds:             int32(min(20, max(1, o.WaitTime/time.Second))),
			VisibilityTimeout:           int32(max(1, o.VisibilityTimeout/time.Second)),
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		rcancel()
		if err != nil {
			if ctx.Err() != nil {
				// Whatever the DLQ handed out comes back to it after the visibility timeout.
				return res, ctx.Err()
			}
			return res, fmt.Errorf("receive from the DLQ: %w", err)
		}
		if len(out.Messages) == 0 {
			return res, nil
		}
		if ctx.Err() != nil {
			bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchDeadline)
			if err := release(bctx, c, o.DLQ, out.Messages); err != nil {
				o.Logf("%d messages received as the run was interrupted stay hidden in the DLQ until the visibility timeout (%s): %v", len(out.Messages), o.VisibilityTimeout, err)
			}
			cancel()
			return res, ctx.Err()
		}
		batch := make([]types.Message, 0, len(out.Messages))
		for _, m := range out.Messages {
			h := sha256.Sum256([]byte(aws.ToString(m.Body)))
			if moved[h] {
				res.CameBack++
				continue
			}
			moved[h] = true
			batch = append(batch, m)
		}
		if len(batch) == 0 {
			continue
		}
		// The batch is finished even if ctx is cancelled now: stopping between send and
		// delete would leave the messages in both queues.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchDeadline)
		err = moveBatch(bctx, c, o, fifo, batch, &res)
		cancel()
		o.Progress(Progress{Method: MethodReceive, Moved: res.Moved, Total: limit})
		if err != nil {
			return res, err
		}
	}
}

// moveBatch sends msgs to the source, deletes from the DLQ those that were sent, and makes
// those that were not visible in the DLQ again.
func moveBatch(ctx context.Context, c Client, o Options, fifo bool, msgs []types.Message, res *Result) error {
	entries := make([]types.SendMessageBatchRequestEntry, len(msgs))
	byID := make(map[string]types.Message, len(msgs))
	for i, m := range msgs {
		id := "m" + strconv.Itoa(i)
		byID[id] = m
		entries[i] = sendEntry(id, m, fifo)
	}
	sentIDs, sendErr := send(ctx, c, o.Source, entries)

	sent := make([]types.Message, 0, len(sentIDs))
	unsent := make([]types.Message, 0, len(msgs)-len(sentIDs))
	for _, e := range entries {
		if sentIDs[aws.ToString(e.Id)] {
			sent = append(sent, byID[aws.ToString(e.Id)])
		} else {
			unsent = append(unsent, byID[aws.ToString(e.Id)])
		}
	}
	res.Moved += int64(len(sent))

	var errs []error
	if sendErr != nil {
		errs = append(errs, sendErr)
	}
	if notDeleted, err := deleteMessages(ctx, c, o.DLQ, sent); err != nil {
		res.NotDeleted += notDeleted
		errs = append(errs, fmt.Errorf("%d messages are in the source queue but could not be deleted from the DLQ: "+
			"they come back there after the visibility timeout (%s), and another redrive would deliver them twice: %w",
			notDeleted, o.VisibilityTimeout, err))
	}
	if len(unsent) > 0 {
		res.Returned += len(unsent)
		if err := release(ctx, c, o.DLQ, unsent); err != nil {
			o.Logf("%d unsent messages stay hidden in the DLQ until the visibility timeout (%s): %v", len(unsent), o.VisibilityTimeout, err)
		}
	}
	return errors.Join(errs...)
}

// sendEntry copies a DLQ message into a send entry for the source queue.
func sendEntry(id string, m types.Message, fifo bool) types.SendMessageBatchRequestEntry {
	e := types.SendMessageBatchRequestEntry{
		Id:                aws.String(id),
		MessageBody:       m.Body,
		MessageAttributes: m.MessageAttributes,
	}
	if th := m.Attributes[string(types.MessageSystemAttributeNameAWSTraceHeader)]; th != "" {
		e.MessageSystemAttributes = map[string]types.MessageSystemAttributeValue{
			string(types.MessageSystemAttributeNameForSendsAWSTraceHeader): {DataType: aws.String("String"), StringValue: aws.String(th)},
		}
	}
	if fifo {
		e.MessageGroupId = aws.String(m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)])
		dedup := m.Attributes[string(types.MessageSystemAttributeNameMessageDeduplicationId)]
		if dedup == "" {
			dedup = aws.ToString(m.MessageId)
		}
		e.MessageDeduplicationId = aws.String(dedup)
	}
	return e
}

// sendAttempts is how often an entry that failed through no fault of its own is sent.
const sendAttempts = 3

// send sends entries with SendMessageBatch and returns the ids of those stored. Entries
// that failed with a server fault are retried; a batch too long for one request is split.
func send(ctx context.Context, c Client, queueURL string, entries []types.SendMessageBatchRequestEntry) (map[string]bool, error) {
	sent := map[string]bool{}
	pending := entries
	var lastErr error
	for attempt := 1; attempt <= sendAttempts && len(pending) > 0; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return sent, errors.Join(lastErr, ctx.Err())
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		out, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: pending})
		if err != nil {
			if isCode(err, "AWS.SimpleQueueService.BatchRequestTooLong", "BatchRequestTooLong") && len(pending) > 1 {
				half := len(pending) / 2
				a, errA := send(ctx, c, queueURL, pending[:half])
				b, errB := send(ctx, c, queueURL, pending[half:])
				for id := range a {
					sent[id] = true
				}
				for id := range b {
					sent[id] = true
				}
				return sent, errors.Join(errA, errB)
			}
			return sent, fmt.Errorf("send to the source queue: %w", err)
		}
		for _, ok := range out.Successful {
			sent[aws.ToString(ok.Id)] = true
		}
		var retry []types.SendMessageBatchRequestEntry
		var fatal []string
		for _, f := range out.Failed {
			lastErr = fmt.Errorf("send to the source queue: entry %s: %s: %s", aws.ToString(f.Id), aws.ToString(f.Code), aws.ToString(f.Message))
			if f.SenderFault {
				fatal = append(fatal, aws.ToString(f.Code)+": "+aws.ToString(f.Message))
				continue
			}
			for _, e := range pending {
				if aws.ToString(e.Id) == aws.ToString(f.Id) {
					retry = append(retry, e)
				}
			}
		}
		if len(fatal) > 0 {
			return sent, fmt.Errorf("send to the source queue: %d messages rejected: %s", len(fatal), strings.Join(fatal, "; "))
		}
		pending = retry
	}
	if len(pending) > 0 {
		return sent, fmt.Errorf("%d messages could not be sent after %d attempts: %w", len(pending), sendAttempts, lastErr)
	}
	return sent, nil
}

// deleteMessages deletes msgs from the DLQ and returns how many were not deleted.
func deleteMessages(ctx context.Context, c Client, dlq string, msgs []types.Message) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	entries := make([]types.DeleteMessageBatchRequestEntry, len(msgs))
	for i, m := range msgs {
		entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String("m" + strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
	}
	out, err := c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(dlq), Entries: entries})
	if err != nil {
		return len(msgs), err
	}
	if len(out.Failed) > 0 {
		f := out.Failed[0]
		return len(out.Failed), fmt.Errorf("%s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
	}
	return 0, nil
}

// release makes msgs visible in the DLQ again.
func release(ctx context.Context, c Client, dlq string, msgs []types.Message) error {
	entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(msgs))
	for i, m := range msgs {
		entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String("m" + strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}
	}
	out, err := c.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(dlq), Entries: entries})
	if err != nil {
		return err
	}
	if len(out.Failed) > 0 {
		return fmt.Errorf("%d failed: %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
	}
	return nil
}

func isCode(err error, codes ...string) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}
