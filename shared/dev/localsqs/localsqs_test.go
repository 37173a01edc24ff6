package localsqs_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/datajetty/webhooks/shared/dev/localsqs"
	"github.com/datajetty/webhooks/shared/dev/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fixture is the template's IngestQueue (VisibilityTimeout 180, maxReceiveCount 5) and its
// DLQ, provisioned for one test.
type fixture struct {
	client *sqs.Client
	queue  string // IngestQueue URL
	dlq    string // IngestDLQ URL
	arn    string // IngestQueue ARN
}

func setup(t *testing.T) *fixture {
	t.Helper()
	stack := testenv.Stack(t, nil)
	arn, ok := stack.Attr("IngestQueue", "Arn")
	if !ok {
		t.Fatal("IngestQueue has no Arn")
	}
	return &fixture{
		client: sqs.NewFromConfig(testenv.AWSConfig(t)),
		queue:  stack.Resources["IngestQueue"],
		dlq:    stack.Resources["IngestDLQ"],
		arn:    arn,
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (f *fixture) poller(h localsqs.Handler) *localsqs.Poller {
	return &localsqs.Poller{Client: f.client, QueueURL: f.queue, Handler: h, Timeout: 10 * time.Second, Logger: quiet()}
}

// send puts n messages with bodies "<prefix>-<i>" on the queue and returns their ids.
func (f *fixture) send(t *testing.T, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for start := 0; start < n; start += 10 {
		var entries []types.SendMessageBatchRequestEntry
		for i := start; i < min(start+10, n); i++ {
			entries = append(entries, types.SendMessageBatchRequestEntry{
				Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(fmt.Sprintf("%s-%d", prefix, i)),
			})
		}
		out, err := f.client.SendMessageBatch(context.Background(), &sqs.SendMessageBatchInput{QueueUrl: &f.queue, Entries: entries})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Failed) > 0 {
			t.Fatalf("send: %d failed", len(out.Failed))
		}
		for _, s := range out.Successful {
			ids = append(ids, aws.ToString(s.MessageId))
		}
	}
	return ids
}

// counts returns the queue's visible and in-flight message counts.
func (f *fixture) counts(t *testing.T, url string) (visible, inFlight int) {
	t.Helper()
	out, err := f.client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: &url,
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	visible, _ = strconv.Atoi(out.Attributes["ApproximateNumberOfMessages"])
	inFlight, _ = strconv.Atoi(out.Attributes["ApproximateNumberOfMessagesNotVisible"])
	return visible, inFlight
}

func (f *fixture) wantCounts(t *testing.T, url string, visible, inFlight int) {
	t.Helper()
	if v, n := f.counts(t, url); v != visible || n != inFlight {
		t.Fatalf("queue has %d visible and %d in flight, want %d and %d", v, n, visible, inFlight)
	}
}

// release makes a received message visible again after secs seconds, as the deliver
// function does to schedule a retry.
func (f *fixture) release(ctx context.Context, receipt string, secs int32) error {
	_, err := f.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: &f.queue, ReceiptHandle: &receipt, VisibilityTimeout: secs,
	})
	return err
}

// recorder is a handler that keeps every event and answers with fn (nil: success).
type recorder struct {
	mu     sync.Mutex
	events []events.SQSEvent
	fn     func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)
}

func (r *recorder) handle(ctx context.Context, e events.SQSEvent) (events.SQSEventResponse, error) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	if r.fn == nil {
		return events.SQSEventResponse{}, nil
	}
	return r.fn(ctx, e)
}

func (r *recorder) last(t *testing.T) events.SQSEvent {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		t.Fatal("handler was not invoked")
	}
	return r.events[len(r.events)-1]
}

func once(t *testing.T, p *localsqs.Poller) int {
	t.Helper()
	n, err := p.Once(context.Background())
	if err != nil {
		t.Fatalf("Once: %v", err)
	}
	return n
}

// ---------------------------------------------------------------- event shape

func TestEventIsShapedLikeLambdas(t *testing.T) {
	f := setup(t)
	body := `{"id":"evt_1","type":"export.done"}`
	_, err := f.client.SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl:    &f.queue,
		MessageBody: &body,
		MessageAttributes: map[string]types.MessageAttributeValue{
			"reason": {DataType: aws.String("String"), StringValue: aws.String("too large")},
			"count":  {DataType: aws.String("Number"), StringValue: aws.String("42")},
			"blob":   {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2}},
			"custom": {DataType: aws.String("String.tenant"), StringValue: aws.String("acme")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	var deadline time.Time
	var requestID string
	rec := &recorder{fn: func(ctx context.Context, _ events.SQSEvent) (events.SQSEventResponse, error) {
		deadline, _ = ctx.Deadline()
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			requestID = lc.AwsRequestID
		}
		return events.SQSEventResponse{}, nil
	}}
	p := f.poller(rec.handle)
	p.Timeout = 7 * time.Second
	start := time.Now()
	if n := once(t, p); n != 1 {
		t.Fatalf("handled %d, want 1", n)
	}
	if d := deadline.Sub(start); d < 6*time.Second || d > 8*time.Second {
		t.Errorf("handler deadline %s after the start, want about the 7 s Timeout", d)
	}
	if requestID == "" {
		t.Error("the handler context carries no lambdacontext request id")
	}

	ev := rec.last(t)
	if len(ev.Records) != 1 {
		t.Fatalf("%d records", len(ev.Records))
	}
	r := ev.Records[0]
	sum := md5.Sum([]byte(body))
	checks := map[string][2]string{
		"body":           {r.Body, body},
		"eventSource":    {r.EventSource, "aws:sqs"},
		"eventSourceARN": {r.EventSourceARN, f.arn},
		"awsRegion":      {r.AWSRegion, testenv.Region},
		"md5OfBody":      {r.Md5OfBody, hex.EncodeToString(sum[:])},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if r.MessageId == "" || r.ReceiptHandle == "" || r.Md5OfMessageAttributes == "" {
		t.Errorf("messageId %q, receiptHandle %q, md5OfMessageAttributes %q: want all set", r.MessageId, r.ReceiptHandle, r.Md5OfMessageAttributes)
	}
	if got := r.Attributes["ApproximateReceiveCount"]; got != "1" {
		t.Errorf("ApproximateReceiveCount = %q, want 1", got)
	}
	for _, k := range []string{"SentTimestamp", "ApproximateFirstReceiveTimestamp"} {
		ms, err := strconv.ParseInt(r.Attributes[k], 10, 64)
		if err != nil || time.Since(time.UnixMilli(ms)).Abs() > time.Minute {
			t.Errorf("%s = %q, want a recent epoch in ms", k, r.Attributes[k])
		}
	}
	if r.Attributes["SenderId"] == "" {
		t.Error("SenderId missing")
	}

	wantAttr := map[string]events.SQSMessageAttribute{
		"reason": {DataType: "String", StringValue: aws.String("too large")},
		"count":  {DataType: "Number", StringValue: aws.String("42")},
		"blob":   {DataType: "Binary", BinaryValue: []byte{0, 1, 2}},
		"custom": {DataType: "String.tenant", StringValue: aws.String("acme")},
	}
	if len(r.MessageAttributes) != len(wantAttr) {
		t.Errorf("messageAttributes = %v, want %d of them", r.MessageAttributes, len(wantAttr))
	}
	for k, want := range wantAttr {
		got := r.MessageAttributes[k]
		if got.DataType != want.DataType || aws.ToString(got.StringValue) != aws.ToString(want.StringValue) ||
			string(got.BinaryValue) != string(want.BinaryValue) {
			t.Errorf("messageAttributes[%s] = %+v, want %+v", k, got, want)
		}
	}

	// The JSON a Lambda function would receive: Lambda's keys, list values as [] not null.
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"Records":[`, `"eventSource":"aws:sqs"`, `"stringListValues":[]`, `"binaryListValues":[]`, `"binaryValue":"AAEC"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("event JSON lacks %s:\n%s", want, raw)
		}
	}
	f.wantCounts(t, f.queue, 0, 0) // acknowledged
}

func TestNewEventWithoutAttributes(t *testing.T) {
	ev := localsqs.NewEvent([]types.Message{{
		MessageId: aws.String("m1"), ReceiptHandle: aws.String("rh"), Body: aws.String("hello"),
	}}, "arn:aws:sqs:eu-west-1:123456789012:q", "")
	r := ev.Records[0]
	if r.Md5OfBody != "5d41402abc4b2a76b9719d911017c592" {
		t.Errorf("md5OfBody = %q, want md5(hello) when SQS gave none", r.Md5OfBody)
	}
	if r.AWSRegion != "eu-west-1" {
		t.Errorf("awsRegion = %q, want the ARN's region", r.AWSRegion)
	}
	raw, _ := json.Marshal(r)
	for _, want := range []string{`"attributes":{}`, `"messageAttributes":{}`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("record JSON lacks %s: %s", want, raw)
		}
	}
}

func TestInvalidPoller(t *testing.T) {
	h := func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
		return events.SQSEventResponse{}, nil
	}
	client := sqs.New(sqs.Options{Region: "us-east-1"})
	for name, p := range map[string]*localsqs.Poller{
		"no client":  {QueueURL: "http://q/1/q", Handler: h},
		"no queue":   {Client: client, Handler: h},
		"no handler": {Client: client, QueueURL: "http://q/1/q"},
		"batch 11":   {Client: client, QueueURL: "http://q/1/q", Handler: h, BatchSize: 11},
	} {
		if _, err := p.Once(context.Background()); err == nil {
			t.Errorf("%s: Once succeeded", name)
		}
		if err := p.Run(context.Background()); err == nil {
			t.Errorf("%s: Run succeeded", name)
		}
	}
}

// ---------------------------------------------------------------- batching

func TestBatchSize(t *testing.T) {
	f := setup(t)
	ids := f.send(t, "b", 25)
	rec := &recorder{}
	p := f.poller(rec.handle)
	p.BatchSize = 4
	seen := map[string]bool{}
	for i := 0; i < 30 && len(seen) < len(ids); i++ {
		n := once(t, p)
		if n > 4 {
			t.Fatalf("invoked with %d messages, BatchSize is 4", n)
		}
		if n > 0 {
			for _, r := range rec.last(t).Records {
				seen[r.MessageId] = true
			}
		}
	}
	if len(seen) != len(ids) {
		t.Fatalf("handled %d distinct messages, want %d", len(seen), len(ids))
	}
	f.wantCounts(t, f.queue, 0, 0)

	// Default: up to 10.
	f.send(t, "d", 12)
	p.BatchSize = 0
	if n := once(t, p); n < 1 || n > 10 {
		t.Fatalf("default batch: %d messages, want 1..10", n)
	}
}

// ---------------------------------------------------------------- acknowledgement

func TestPartialFailuresStayAndComeBack(t *testing.T) {
	f := setup(t)
	f.send(t, "p", 5)
	// Fail two messages: "p-1" scheduled for a retry in 1 s (like deliver's backoff), "p-3"
	// left with the queue's 180 s visibility timeout.
	rec := &recorder{fn: func(ctx context.Context, e events.SQSEvent) (events.SQSEventResponse, error) {
		var resp events.SQSEventResponse
		for _, r := range e.Records {
			switch r.Body {
			case "p-1":
				if err := f.release(ctx, r.ReceiptHandle, 1); err != nil {
					return resp, err
				}
				fallthrough
			case "p-3":
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
			}
		}
		return resp, nil
	}}
	p := f.poller(rec.handle)
	if n := once(t, p); n != 5 {
		t.Fatalf("first batch: %d messages, want 5", n)
	}
	f.wantCounts(t, f.queue, 0, 2) // three deleted, two in flight
	if n := once(t, p); n != 0 {
		t.Fatalf("%d messages visible before the retry delay", n)
	}

	time.Sleep(1500 * time.Millisecond)
	rec.fn = nil
	if n := once(t, p); n != 1 {
		t.Fatalf("after the retry delay: %d messages, want p-1 alone", n)
	}
	r := rec.last(t).Records[0]
	if r.Body != "p-1" || r.Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("retried %q with ApproximateReceiveCount %q, want p-1 and 2", r.Body, r.Attributes["ApproximateReceiveCount"])
	}
	f.wantCounts(t, f.queue, 0, 1) // p-1 deleted, p-3 still invisible
}

func TestInvocationFailureDeletesNothing(t *testing.T) {
	boom := errors.New("boom")
	cases := map[string]func(context.Context, events.SQSEvent) (events.SQSEventResponse, error){
		"error": func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{}, boom
		},
		"panic": func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			panic("kaboom")
		},
		"unknown itemIdentifier": func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "not-a-message"}}}, nil
		},
		"empty itemIdentifier": func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{}}}, nil
		},
		"timeout honoured": func(ctx context.Context, _ events.SQSEvent) (events.SQSEventResponse, error) {
			<-ctx.Done() // returns "success" once the deadline has passed
			return events.SQSEventResponse{}, nil
		},
		"timeout ignored": func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
			time.Sleep(600 * time.Millisecond)
			return events.SQSEventResponse{}, nil
		},
	}
	f := setup(t)
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			f.send(t, "f", 3)
			rec := &recorder{fn: fn}
			p := f.poller(rec.handle)
			p.Timeout = 300 * time.Millisecond
			n, err := p.Once(context.Background())
			if n != 3 || !errors.Is(err, localsqs.ErrInvocationFailed) {
				t.Fatalf("Once = %d, %v; want 3 and ErrInvocationFailed", n, err)
			}
			if name == "error" && !errors.Is(err, boom) {
				t.Errorf("error %v does not wrap the handler's", err)
			}
			f.wantCounts(t, f.queue, 0, 3) // nothing deleted, all in flight

			// Once visible again, the whole batch comes back, each received a second time.
			for _, r := range rec.last(t).Records {
				if err := f.release(context.Background(), r.ReceiptHandle, 0); err != nil {
					t.Fatal(err)
				}
			}
			rec.fn = nil
			if n := once(t, p); n != 3 {
				t.Fatalf("retry: %d messages, want 3", n)
			}
			for _, r := range rec.last(t).Records {
				if got := r.Attributes["ApproximateReceiveCount"]; got != "2" {
					t.Errorf("%s: ApproximateReceiveCount %q, want 2", r.Body, got)
				}
			}
			f.wantCounts(t, f.queue, 0, 0)
		})
	}
}

// ---------------------------------------------------------------- redrive

// TestRedriveAfterMaxReceiveCount documents what moto does with a RedrivePolicy: like SQS,
// it moves a message to the dead-letter queue on the receive that would exceed
// maxReceiveCount (IngestQueue: 5). The message is delivered to the handler exactly 5 times,
// with ApproximateReceiveCount 1..5; the 6th receive returns nothing and the message is in
// the DLQ, same id and body, keeping its receive count (received from the DLQ it reports
// 6: moto moves the message object itself and counts on).
func TestRedriveAfterMaxReceiveCount(t *testing.T) {
	f := setup(t)
	id := f.send(t, "r", 1)[0]
	var counts []string
	rec := &recorder{fn: func(ctx context.Context, e events.SQSEvent) (events.SQSEventResponse, error) {
		var resp events.SQSEventResponse
		for _, r := range e.Records {
			counts = append(counts, r.Attributes["ApproximateReceiveCount"])
			if err := f.release(ctx, r.ReceiptHandle, 0); err != nil {
				return resp, err
			}
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
		}
		return resp, nil
	}}
	p := f.poller(rec.handle)
	for i := 0; i < 8; i++ {
		once(t, p)
		time.Sleep(5 * time.Millisecond) // visibility 0 means "visible after now" in moto
	}
	if got := strings.Join(counts, ","); got != "1,2,3,4,5" {
		t.Fatalf("ApproximateReceiveCount of the invocations = %s, want 1,2,3,4,5", got)
	}
	f.wantCounts(t, f.queue, 0, 0)
	f.wantCounts(t, f.dlq, 1, 0)

	out, err := f.client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl:                    &f.dlq,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("DLQ returned %d messages", len(out.Messages))
	}
	m := out.Messages[0]
	if aws.ToString(m.MessageId) != id || aws.ToString(m.Body) != "r-0" {
		t.Errorf("DLQ message %s %q, want %s r-0", aws.ToString(m.MessageId), aws.ToString(m.Body), id)
	}
	t.Logf("in the DLQ: ApproximateReceiveCount %s, attributes %v", m.Attributes["ApproximateReceiveCount"], m.Attributes)
	if got := m.Attributes["ApproximateReceiveCount"]; got != "6" {
		t.Errorf("DLQ ApproximateReceiveCount = %s; moto 5.2.5 keeps counting (6): has the emulator changed?", got)
	}
}

// ---------------------------------------------------------------- Run

func TestRunUntilCancelled(t *testing.T) {
	f := setup(t)
	ids := f.send(t, "run", 23)
	var mu sync.Mutex
	seen := map[string]bool{}
	all := make(chan struct{})
	h := func(_ context.Context, e events.SQSEvent) (events.SQSEventResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range e.Records {
			seen[r.MessageId] = true
		}
		if len(seen) == len(ids) {
			close(all)
		}
		return events.SQSEventResponse{}, nil
	}
	p := f.poller(h)
	p.IdleWait = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	select {
	case <-all:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not hand every message to the handler")
	}
	// Idle polling for a while leaves the handler alone.
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop after cancel")
	}
	f.wantCounts(t, f.queue, 0, 0)
}
