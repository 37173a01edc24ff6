package redrive_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/tools/internal/redrive"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const total = 25

// fixture is a provisioned stack with total messages in the DeliveryDLQ.
type fixture struct {
	client   *sqs.Client
	dlq, src string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	stack := testenv.Stack(t, nil)
	f := &fixture{
		client: sqs.NewFromConfig(testenv.AWSConfig(t)),
		dlq:    stack.Resources["DeliveryDLQ"],
		src:    stack.Env["WEBHOOKS_DELIVERY_QUEUE_URL"],
	}
	if f.dlq == "" || f.src == "" {
		t.Fatalf("stack lacks DeliveryDLQ or WEBHOOKS_DELIVERY_QUEUE_URL: %v %v", stack.Resources, stack.Env)
	}
	ctx := context.Background()
	for i := 0; i < total; i += 10 {
		var entries []types.SendMessageBatchRequestEntry
		for j := i; j < min(i+10, total); j++ {
			entries = append(entries, types.SendMessageBatchRequestEntry{
				Id:                aws.String(fmt.Sprintf("e%d", j)),
				MessageBody:       aws.String(body(j)),
				MessageAttributes: attributes(j),
			})
		}
		out, err := f.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(f.dlq), Entries: entries})
		if err != nil || len(out.Failed) > 0 {
			t.Fatalf("seed the DLQ: %v %v", err, out)
		}
	}
	return f
}

// withMiddleware returns a client that runs fn around every operation.
func (f *fixture) withMiddleware(t *testing.T, fn func(ctx context.Context, op string, next func() error) error) *sqs.Client {
	return clientWith(t, func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		var out middleware.InitializeOutput
		var md middleware.Metadata
		err := fn(ctx, awsmiddleware.GetOperationName(ctx), func() error {
			var err error
			out, md, err = next.HandleInitialize(ctx, in)
			return err
		})
		return out, md, err
	})
}

// initFunc is an Initialize-step middleware.
type initFunc = func(context.Context, middleware.InitializeInput, middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error)

// clientWith returns a client with fn in front of every operation.
func clientWith(t *testing.T, fn initFunc) *sqs.Client {
	return sqs.NewFromConfig(testenv.AWSConfig(t), func(o *sqs.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("test", fn), middleware.Before)
		})
	})
}

func body(i int) string { return fmt.Sprintf(`{"job":%d,"payload":"message %02d"}`, i, i) }

func attributes(i int) map[string]types.MessageAttributeValue {
	return map[string]types.MessageAttributeValue{
		"tenant_id":         {DataType: aws.String("String"), StringValue: aws.String(fmt.Sprintf("tenant-%d", i%3))},
		"attempt":           {DataType: aws.String("Number"), StringValue: aws.String(fmt.Sprint(i))},
		"reason":            {DataType: aws.String("String"), StringValue: aws.String("invalid_event")},
		"source_message_id": {DataType: aws.String("String"), StringValue: aws.String(fmt.Sprintf("src-%d", i))},
		"blob":              {DataType: aws.String("Binary"), BinaryValue: []byte{0, byte(i), 0xff}},
	}
}

// drain receives every message of a queue (hiding each for a minute) and returns them.
func drain(t *testing.T, c *sqs.Client, url string) []types.Message {
	t.Helper()
	var all []types.Message
	for {
		out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return all
		}
		all = append(all, out.Messages...)
	}
}

// jobs maps each message to its job number and checks body and attributes.
func jobs(t *testing.T, msgs []types.Message) []int {
	t.Helper()
	var out []int
	for _, m := range msgs {
		var j int
		if _, err := fmt.Sscanf(aws.ToString(m.Body), `{"job":%d,`, &j); err != nil {
			t.Fatalf("unexpected body %q", aws.ToString(m.Body))
		}
		if aws.ToString(m.Body) != body(j) {
			t.Errorf("job %d: body %q, want %q", j, aws.ToString(m.Body), body(j))
		}
		want := attributes(j)
		if len(m.MessageAttributes) != len(want) {
			t.Errorf("job %d: attributes %v, want %v", j, m.MessageAttributes, want)
		}
		for k, w := range want {
			g := m.MessageAttributes[k]
			if aws.ToString(g.DataType) != aws.ToString(w.DataType) || aws.ToString(g.StringValue) != aws.ToString(w.StringValue) || string(g.BinaryValue) != string(w.BinaryValue) {
				t.Errorf("job %d: attribute %s = %+v, want %+v", j, k, g, w)
			}
		}
		out = append(out, j)
	}
	sort.Ints(out)
	return out
}

// checkNoLoss asserts that source ∪ DLQ holds every job, and that the only jobs in both
// are those allowed (sent but not deleted).
func checkNoLoss(t *testing.T, inSource, inDLQ []int, dupsAllowed int) {
	t.Helper()
	seen := map[int]int{}
	for _, j := range inSource {
		seen[j]++
	}
	for _, j := range inDLQ {
		seen[j]++
	}
	dups := 0
	for j := 0; j < total; j++ {
		switch n := seen[j]; {
		case n == 0:
			t.Errorf("job %d was lost", j)
		case n > 1:
			dups += n - 1
		}
	}
	if dups != dupsAllowed {
		t.Errorf("%d duplicates, want %d (source %v, DLQ %v)", dups, dupsAllowed, inSource, inDLQ)
	}
	if len(seen) != total {
		t.Errorf("unexpected jobs: %v", seen)
	}
}

func TestFindSourceAndResolve(t *testing.T) {
	stack := testenv.Stack(t, nil)
	c := sqs.NewFromConfig(testenv.AWSConfig(t))
	ctx := context.Background()
	for dlq, srcEnv := range map[string]string{
		"DeliveryDLQ": "WEBHOOKS_DELIVERY_QUEUE_URL",
		"ReplayDLQ":   "WEBHOOKS_REPLAY_QUEUE_URL",
		"IngestDLQ":   "",
	} {
		url, err := redrive.ResolveQueue(ctx, c, dlq, redrive.Naming{Prefix: stack.Prefix})
		if err != nil || url != stack.Resources[dlq] {
			t.Fatalf("ResolveQueue(%s) = %q, %v; want %q", dlq, url, err, stack.Resources[dlq])
		}
		src, err := redrive.FindSource(ctx, c, url)
		want := stack.Resources[strings.TrimSuffix(dlq, "DLQ")+"Queue"]
		if srcEnv != "" && want != stack.Env[srcEnv] {
			t.Fatalf("%s: template source %s differs from env %s", dlq, want, stack.Env[srcEnv])
		}
		if err != nil || src != want {
			t.Errorf("FindSource(%s) = %q, %v; want %q", dlq, src, err, want)
		}
	}
	// A queue that is nobody's DLQ.
	if _, err := redrive.FindSource(ctx, c, stack.Resources["DeliveryQueue"]); err == nil || !strings.Contains(err.Error(), "is it a DLQ") {
		t.Errorf("FindSource(DeliveryQueue): %v", err)
	}
	// A URL is taken as is; an unknown name is an error.
	if u, err := redrive.ResolveQueue(ctx, c, "http://x/1/q", redrive.Naming{}); err != nil || u != "http://x/1/q" {
		t.Errorf("ResolveQueue(URL) = %q, %v", u, err)
	}
	if _, err := redrive.ResolveQueue(ctx, c, "NoSuchDLQ", redrive.Naming{Prefix: stack.Prefix}); err == nil {
		t.Error("ResolveQueue(NoSuchDLQ): want an error")
	}
	// CloudFormation naming: <stack>-<LogicalId>-<suffix>.
	stackName := strings.TrimSuffix(testenv.Prefix(t), "-")
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(stackName + "-DeliveryDLQ-1A2B3C4D5E6F")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl}) })
	if u, err := redrive.ResolveQueue(ctx, c, "DeliveryDLQ", redrive.Naming{Stack: stackName}); err != nil || u != aws.ToString(out.QueueUrl) {
		t.Errorf("ResolveQueue(stack) = %q, %v; want %q", u, err, aws.ToString(out.QueueUrl))
	}
}

func TestRedriveMovesEverything(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	n, err := redrive.Count(ctx, f.client, f.dlq)
	if err != nil || n.Visible != total {
		t.Fatalf("Count = %+v, %v", n, err)
	}
	var mu sync.Mutex
	var progress []redrive.Progress
	var notes []string
	res, err := redrive.Run(ctx, f.client, redrive.Options{
		DLQ: f.dlq, Source: f.src, WaitTime: time.Second,
		Progress: func(p redrive.Progress) { mu.Lock(); progress = append(progress, p); mu.Unlock() },
		Logf:     func(format string, args ...any) { notes = append(notes, fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	// moto has no StartMessageMoveTask: auto falls back, and says so.
	if res.Method != redrive.MethodReceive || res.Moved != total || res.NotDeleted != 0 || res.Returned != 0 {
		t.Fatalf("result %+v, notes %q", res, notes)
	}
	if len(notes) == 0 || !strings.Contains(notes[0], "StartMessageMoveTask") {
		t.Errorf("no note of the fallback: %q", notes)
	}
	if len(progress) < 3 || progress[len(progress)-1].Moved != total || progress[0].Total != total {
		t.Errorf("progress %+v", progress)
	}
	inSource := jobs(t, drain(t, f.client, f.src))
	inDLQ := jobs(t, drain(t, f.client, f.dlq))
	if len(inSource) != total || len(inDLQ) != 0 {
		t.Fatalf("source has %d, DLQ %d", len(inSource), len(inDLQ))
	}
	checkNoLoss(t, inSource, inDLQ, 0)
}

func TestRedriveMax(t *testing.T) {
	f := newFixture(t)
	res, err := redrive.Run(context.Background(), f.client, redrive.Options{DLQ: f.dlq, Source: f.src, Max: 13, WaitTime: time.Second})
	if err != nil || res.Moved != 13 || res.Method != redrive.MethodReceive {
		t.Fatalf("%+v %v", res, err)
	}
	inSource, inDLQ := jobs(t, drain(t, f.client, f.src)), jobs(t, drain(t, f.client, f.dlq))
	if len(inSource) != 13 || len(inDLQ) != total-13 {
		t.Fatalf("source %d, DLQ %d", len(inSource), len(inDLQ))
	}
	checkNoLoss(t, inSource, inDLQ, 0)
}

// An interruption while a batch is being sent: the batch is finished, nothing more starts.
func TestRedriveInterruptedMidBatch(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sends atomic.Int32
	c := f.withMiddleware(t, func(_ context.Context, op string, next func() error) error {
		if op == "SendMessageBatch" && sends.Add(1) == 2 {
			cancel() // Ctrl-C while the second batch is on its way to the source
		}
		return next()
	})
	res, err := redrive.Run(ctx, c, redrive.Options{DLQ: f.dlq, Source: f.src, Method: redrive.MethodReceive, WaitTime: time.Second})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if res.Moved != 20 || res.NotDeleted != 0 {
		t.Fatalf("result %+v, want 20 moved", res)
	}
	inSource, inDLQ := jobs(t, drain(t, f.client, f.src)), jobs(t, drain(t, f.client, f.dlq))
	if len(inSource) != 20 || len(inDLQ) != 5 {
		t.Fatalf("source %d, DLQ %d", len(inSource), len(inDLQ))
	}
	checkNoLoss(t, inSource, inDLQ, 0)
}

// An interruption that loses a receive's response: the messages the DLQ handed out come
// back after the visibility timeout.
func TestRedriveInterruptedDuringReceive(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var receives atomic.Int32
	c := f.withMiddleware(t, func(_ context.Context, op string, next func() error) error {
		if op == "ReceiveMessage" && receives.Add(1) == 2 {
			err := next() // the DLQ hands out a batch…
			cancel()      // …and the response is lost to the interruption
			return errors.Join(err, context.Canceled)
		}
		return next()
	})
	res, err := redrive.Run(ctx, c, redrive.Options{DLQ: f.dlq, Source: f.src, Method: redrive.MethodReceive, WaitTime: time.Second, VisibilityTimeout: time.Second})
	if !errors.Is(err, context.Canceled) || res.Moved != 10 {
		t.Fatalf("%+v %v", res, err)
	}
	time.Sleep(1500 * time.Millisecond) // the lost batch becomes visible again
	inSource, inDLQ := jobs(t, drain(t, f.client, f.src)), jobs(t, drain(t, f.client, f.dlq))
	if len(inSource) != 10 || len(inDLQ) != 15 {
		t.Fatalf("source %d, DLQ %d", len(inSource), len(inDLQ))
	}
	checkNoLoss(t, inSource, inDLQ, 0)
}

// An interruption during a receive that completes: what it brought is handed back to the
// DLQ at once, visible, not left hidden.
func TestRedriveInterruptedWhileReceiving(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var receives atomic.Int32
	c := f.withMiddleware(t, func(_ context.Context, op string, next func() error) error {
		if op == "ReceiveMessage" && receives.Add(1) == 2 {
			cancel() // Ctrl-C during the second receive
		}
		return next()
	})
	res, err := redrive.Run(ctx, c, redrive.Options{DLQ: f.dlq, Source: f.src, Method: redrive.MethodReceive, WaitTime: time.Second})
	if !errors.Is(err, context.Canceled) || res.Moved != 10 {
		t.Fatalf("%+v %v", res, err)
	}
	n, err := redrive.Count(context.Background(), f.client, f.dlq)
	if err != nil || n.Visible != 15 || n.InFlight != 0 {
		t.Fatalf("DLQ counts %+v %v: want 15 visible, none hidden", n, err)
	}
	inSource, inDLQ := jobs(t, drain(t, f.client, f.src)), jobs(t, drain(t, f.client, f.dlq))
	if len(inSource) != 10 || len(inDLQ) != 15 {
		t.Fatalf("source %d, DLQ %d", len(inSource), len(inDLQ))
	}
	checkNoLoss(t, inSource, inDLQ, 0)
}

// A failed delete: the batch is in both queues (at-least-once), the run stops and says so.
func TestRedriveDeleteFails(t *testing.T) {
	f := newFixture(t)
	var deletes atomic.Int32
	c := f.withMiddleware(t, func(_ context.Context, op string, next func() error) error {
		if op == "DeleteMessageBatch" && deletes.Add(1) == 2 {
			return errors.New("injected: connection reset")
		}
		return next()
	})
	res, err := redrive.Run(context.Background(), c, redrive.Options{DLQ: f.dlq, Source: f.src, Method: redrive.MethodReceive, WaitTime: time.Second, VisibilityTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "could not be deleted") {
		t.Fatalf("err = %v", err)
	}
	if res.Moved != 20 || res.NotDeleted != 10 {
		t.Fatalf("result %+v, want 20 moved, 10 not deleted", res)
	}
	time.Sleep(1500 * time.Millisecond)
	inSource, inDLQ := jobs(t, drain(t, f.client, f.src)), jobs(t, drain(t, f.client, f.dlq))
	if len(inSource) != 20 || len(inDLQ) != 15 {
		t.Fatalf("source %d, DLQ %d", len(inSource), len(inDLQ))
	}
	// The 10 of the failed delete are in both queues, never in neither.
	checkNoLoss(t, inSource, inDLQ, 10)
}

// A send that fails for part of a batch: only what was sent is deleted, the rest is made
// visible in the DLQ again at once.
func TestRedriveSendPartlyRejected(t *testing.T) {
	f := newFixture(t)
	// The emulator stores the first half of each SendMessageBatch; the second half comes back
	// as Failed with a sender fault (as for a message SQS rejects).
	c := clientWith(t, func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		p, ok := in.Parameters.(*sqs.SendMessageBatchInput)
		if !ok {
			return next.HandleInitialize(ctx, in)
		}
		out, md, err := next.HandleInitialize(ctx, middleware.InitializeInput{Parameters: &sqs.SendMessageBatchInput{QueueUrl: p.QueueUrl, Entries: p.Entries[:len(p.Entries)/2]}})
		if err != nil {
			return out, md, err
		}
		res := out.Result.(*sqs.SendMessageBatchOutput)
		for _, e := range p.Entries[len(p.Entries)/2:] {
			res.Failed = append(res.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InvalidParameterValue"), Message: aws.String("injected"), SenderFault: true})
		}
		return out, md, nil
	})
	res, err := redrive.Run(context.Background(), c, redrive.Options{DLQ: f.dlq, Source: f.src, Method: redrive.MethodReceive, WaitTime: time.Second})
	if err == nil || !strings.Contains(err.Error(), "rejected") {
		t.Fatalf("err = %v", err)
	}
	if res.Moved != 5 || res.Returned != 5 || res.NotDeleted != 0 {
		t.Fatalf("result %+v", res)
	}
	inSource, inDLQ := jobs(t, drain(t, f.client, f.src)), jobs(t, drain(t, f.client, f.dlq))
	if len(inSource) != 5 || len(inDLQ) != 20 {
		t.Fatalf("source %d, DLQ %d", len(inSource), len(inDLQ))
	}
	checkNoLoss(t, inSource, inDLQ, 0)
}

// Messages that fail again at once come back to the DLQ while the run goes on (the ingest
// function dead-letters a malformed event straight away): each is moved once, and the run
// ends.
func TestRedriveDoesNotChaseMessagesThatComeBack(t *testing.T) {
	f := newFixture(t)
	plain := f.client
	c := clientWith(t, func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleInitialize(ctx, in)
		if p, ok := in.Parameters.(*sqs.SendMessageBatchInput); ok && err == nil && aws.ToString(p.QueueUrl) == f.src {
			// The consumer fails each message at once: straight back to the DLQ.
			if _, berr := plain.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(f.dlq), Entries: p.Entries}); berr != nil {
				t.Error(berr)
			}
		}
		return out, md, err
	})
	done := make(chan struct{})
	var res redrive.Result
	var err error
	go func() {
		defer close(done)
		res, err = redrive.Run(context.Background(), c, redrive.Options{DLQ: f.dlq, Source: f.src, Method: redrive.MethodReceive, WaitTime: time.Second})
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the run chases the messages that come back")
	}
	if err != nil || res.Moved != total {
		t.Fatalf("%+v %v", res, err)
	}
	inSource, inDLQ := jobs(t, drain(t, f.client, f.src)), jobs(t, drain(t, f.client, f.dlq))
	if len(inSource) != total || len(inDLQ) != total {
		t.Fatalf("source %d, DLQ %d (every message once in each)", len(inSource), len(inDLQ))
	}
	checkNoLoss(t, inSource, nil, 0)
	checkNoLoss(t, nil, inDLQ, 0)
}
