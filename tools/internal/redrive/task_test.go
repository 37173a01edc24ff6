package redrive_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/datajetty/webhooks/tools/internal/redrive"
)

// taskSQS fakes the move-task API of SQS (which the emulator lacks). Methods it does not
// override panic through the nil embedded interface.
type taskSQS struct {
	redrive.Client
	mu       sync.Mutex
	startErr error
	polls    []types.ListMessageMoveTasksResultEntry // returned in turn; the last repeats
	started  *sqs.StartMessageMoveTaskInput
	canceled string
}

func (f *taskSQS) GetQueueAttributes(_ context.Context, in *sqs.GetQueueAttributesInput, _ ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{
		"QueueArn":                    "arn:aws:sqs:eu-west-1:111122223333:" + aws.ToString(in.QueueUrl)[strings.LastIndex(aws.ToString(in.QueueUrl), "/")+1:],
		"ApproximateNumberOfMessages": "0",
	}}, nil
}

func (f *taskSQS) StartMessageMoveTask(_ context.Context, in *sqs.StartMessageMoveTaskInput, _ ...func(*sqs.Options)) (*sqs.StartMessageMoveTaskOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startErr != nil {
		return nil, f.startErr
	}
	f.started = in
	return &sqs.StartMessageMoveTaskOutput{TaskHandle: aws.String("handle-1")}, nil
}

func (f *taskSQS) ListMessageMoveTasks(context.Context, *sqs.ListMessageMoveTasksInput, ...func(*sqs.Options)) (*sqs.ListMessageMoveTasksOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.polls[0]
	if len(f.polls) > 1 {
		f.polls = f.polls[1:]
	}
	return &sqs.ListMessageMoveTasksOutput{Results: []types.ListMessageMoveTasksResultEntry{e}}, nil
}

func (f *taskSQS) CancelMessageMoveTask(_ context.Context, in *sqs.CancelMessageMoveTaskInput, _ ...func(*sqs.Options)) (*sqs.CancelMessageMoveTaskOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.canceled = aws.ToString(in.TaskHandle)
	return &sqs.CancelMessageMoveTaskOutput{ApproximateNumberOfMessagesMoved: 7}, nil
}

func (f *taskSQS) ReceiveMessage(context.Context, *sqs.ReceiveMessageInput, ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	return &sqs.ReceiveMessageOutput{}, nil // an empty DLQ
}

func entry(status string, moved, toMove int64) types.ListMessageMoveTasksResultEntry {
	e := types.ListMessageMoveTasksResultEntry{Status: aws.String(status), ApproximateNumberOfMessagesMoved: moved, ApproximateNumberOfMessagesToMove: aws.Int64(toMove)}
	if status == "RUNNING" {
		e.TaskHandle = aws.String("handle-1")
	}
	return e
}

const (
	dlqURL = "https://sqs.eu-west-1.amazonaws.com/111122223333/stack-DeliveryDLQ-X"
	srcURL = "https://sqs.eu-west-1.amazonaws.com/111122223333/stack-DeliveryQueue-Y"
)

func TestMoveTask(t *testing.T) {
	f := &taskSQS{polls: []types.ListMessageMoveTasksResultEntry{
		entry("RUNNING", 0, 40), entry("RUNNING", 25, 40), entry("COMPLETED", 40, 40),
	}}
	var progress []redrive.Progress
	res, err := redrive.Run(context.Background(), f, redrive.Options{
		DLQ: dlqURL, Source: srcURL, PollInterval: time.Millisecond,
		Progress: func(p redrive.Progress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Method != redrive.MethodTask || res.Moved != 40 || res.TaskHandle != "handle-1" {
		t.Fatalf("result %+v", res)
	}
	if aws.ToString(f.started.SourceArn) != "arn:aws:sqs:eu-west-1:111122223333:stack-DeliveryDLQ-X" ||
		aws.ToString(f.started.DestinationArn) != "arn:aws:sqs:eu-west-1:111122223333:stack-DeliveryQueue-Y" {
		t.Errorf("started %+v", f.started)
	}
	if len(progress) != 3 || progress[1].Moved != 25 || progress[1].Total != 40 || progress[2].Status != "COMPLETED" {
		t.Errorf("progress %+v", progress)
	}
}

func TestMoveTaskFailed(t *testing.T) {
	reason := "AWS.SimpleQueueService.NonExistentQueue"
	failed := entry("FAILED", 3, 40)
	failed.FailureReason = &reason
	f := &taskSQS{polls: []types.ListMessageMoveTasksResultEntry{failed}}
	_, err := redrive.Run(context.Background(), f, redrive.Options{DLQ: dlqURL, Source: srcURL, PollInterval: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), reason) {
		t.Fatalf("err = %v", err)
	}
}

func TestMoveTaskInterruptedIsCancelled(t *testing.T) {
	f := &taskSQS{polls: []types.ListMessageMoveTasksResultEntry{entry("RUNNING", 7, 40)}}
	ctx, cancel := context.WithCancel(context.Background())
	res, err := redrive.Run(ctx, f, redrive.Options{
		DLQ: dlqURL, Source: srcURL, PollInterval: time.Millisecond,
		Progress: func(p redrive.Progress) { cancel() },
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if f.canceled != "handle-1" || res.Moved != 7 {
		t.Fatalf("canceled %q, result %+v", f.canceled, res)
	}
}

func TestMoveTaskUnavailable(t *testing.T) {
	f := &taskSQS{startErr: errors.New("StatusCode: 500, not implemented")}
	var notes []string
	res, err := redrive.Run(context.Background(), f, redrive.Options{
		DLQ: dlqURL, Source: srcURL,
		Logf: func(format string, args ...any) { notes = append(notes, format) },
	})
	if err != nil || res.Method != redrive.MethodReceive || len(notes) != 1 {
		t.Fatalf("auto: %+v %v %q", res, err, notes)
	}
	// Asked for explicitly, the task's failure is the result.
	if _, err := redrive.Run(context.Background(), f, redrive.Options{DLQ: dlqURL, Source: srcURL, Method: redrive.MethodTask}); err == nil {
		t.Fatal("task method: want the start error")
	}
	// -max cannot be a task.
	if _, err := redrive.Run(context.Background(), f, redrive.Options{DLQ: dlqURL, Source: srcURL, Method: redrive.MethodTask, Max: 3}); err == nil {
		t.Fatal("task method with Max: want an error")
	}
}

func TestParseMethod(t *testing.T) {
	for _, s := range []string{"auto", "task", "receive"} {
		if m, err := redrive.ParseMethod(s); err != nil || string(m) != s {
			t.Errorf("ParseMethod(%q) = %q, %v", s, m, err)
		}
	}
	if _, err := redrive.ParseMethod("move"); err == nil {
		t.Error("ParseMethod(move): want an error")
	}
}
