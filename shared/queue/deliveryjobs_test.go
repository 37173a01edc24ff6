package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/testenv"
)

// batchSpy records the entry ids of every SendMessageBatch call and can make SQS report
// chosen entries failed: those entries are taken out of the request before it is sent (so
// nothing is enqueued for them) and added to the response's Failed list.
type batchSpy struct {
	mu    sync.Mutex
	calls [][]string
	// fail decides, per entry id and the number of times that id was sent before, whether
	// the entry fails and whether through the sender's fault.
	fail func(id string, sentBefore int) (fails, senderFault bool)
	sent map[string]int
}

func (s *batchSpy) client(t *testing.T) *sqs.Client {
	mw := middleware.InitializeMiddlewareFunc("BatchSpy", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		params, ok := in.Parameters.(*sqs.SendMessageBatchInput)
		if !ok {
			return next.HandleInitialize(ctx, in)
		}
		s.mu.Lock()
		if s.sent == nil {
			s.sent = map[string]int{}
		}
		var ids []string
		kept := *params
		kept.Entries = nil
		var failed []types.BatchResultErrorEntry
		for _, e := range params.Entries {
			id := aws.ToString(e.Id)
			ids = append(ids, id)
			fails, senderFault := false, false
			if s.fail != nil {
				fails, senderFault = s.fail(id, s.sent[id])
			}
			s.sent[id]++
			if fails {
				failed = append(failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), SenderFault: senderFault})
			} else {
				kept.Entries = append(kept.Entries, e)
			}
		}
		s.calls = append(s.calls, ids)
		s.mu.Unlock()
		if len(kept.Entries) == 0 {
			return middleware.InitializeOutput{Result: &sqs.SendMessageBatchOutput{Failed: failed}}, middleware.Metadata{}, nil
		}
		in.Parameters = &kept
		out, md, err := next.HandleInitialize(ctx, in)
		if res, ok := out.Result.(*sqs.SendMessageBatchOutput); ok && err == nil {
			res.Failed = append(res.Failed, failed...)
		}
		return out, md, err
	})
	return sqs.NewFromConfig(testenv.AWSConfig(t), func(o *sqs.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error { return st.Initialize.Add(mw, middleware.After) })
	})
}

func (s *batchSpy) batches() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func deliveryQueue(t *testing.T) string {
	t.Helper()
	return testenv.Stack(t, nil).Env["WEBHOOKS_DELIVERY_QUEUE_URL"]
}

func testJob(i int) domain.DeliveryJob {
	return domain.DeliveryJob{
		TenantID:   "tenant-a",
		EndpointID: fmt.Sprintf("ep_%02d", i),
		Event: domain.Event{ID: "evt_1", TenantID: "tenant-a", Type: "export.done",
			OccurredAt: time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC), Data: json.RawMessage(`{"n":1}`)},
	}
}

func testJobs(n int) []domain.DeliveryJob {
	out := make([]domain.DeliveryJob, n)
	for i := range out {
		out[i] = testJob(i)
	}
	return out
}

// receiveJobs reads want messages (or what arrives within a few seconds) and returns the
// parsed jobs' endpoint ids, sorted.
func receiveJobs(t *testing.T, client *sqs.Client, url string, want int) []string {
	t.Helper()
	ctx := context.Background()
	var got []string
	for deadline := time.Now().Add(5 * time.Second); len(got) < want && time.Now().Before(deadline); {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			j, err := ParseDeliveryJob(aws.ToString(m.Body))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, j.EndpointID)
		}
	}
	// Anything beyond want is a duplicate send.
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range out.Messages {
		j, _ := ParseDeliveryJob(aws.ToString(m.Body))
		got = append(got, j.EndpointID)
	}
	sort.Strings(got)
	return got
}

func endpointIDs(js []domain.DeliveryJob) []string {
	var out []string
	for _, j := range js {
		out = append(out, j.EndpointID)
	}
	sort.Strings(out)
	return out
}

func TestDeliveryJobsFullBatches(t *testing.T) {
	t.Parallel()
	url := deliveryQueue(t)
	spy := &batchSpy{}
	client := spy.client(t)

	all := testJobs(23)
	failed, err := NewDeliveryJobs(client, url).Send(context.Background(), all)
	if err != nil || len(failed) != 0 {
		t.Fatalf("Send = %d failed, %v", len(failed), err)
	}
	calls := spy.batches()
	sizes := []int{}
	for _, c := range calls {
		sizes = append(sizes, len(c))
	}
	sort.Sort(sort.Reverse(sort.IntSlice(sizes)))
	if !reflect.DeepEqual(sizes, []int{10, 10, 3}) {
		t.Errorf("batch sizes = %v, want [10 10 3]", sizes)
	}
	if got, want := receiveJobs(t, client, url, 23), endpointIDs(all); !reflect.DeepEqual(got, want) {
		t.Errorf("queue holds %v, want %v", got, want)
	}
}

func TestDeliveryJobsRetryFailedEntriesOnly(t *testing.T) {
	t.Parallel()
	url := deliveryQueue(t)
	flaky := map[string]bool{"3": true, "7": true, "15": true, "22": true}
	spy := &batchSpy{fail: func(id string, sentBefore int) (bool, bool) { return flaky[id] && sentBefore == 0, false }}
	client := spy.client(t)
	q := NewDeliveryJobs(client, url)
	q.backoff = time.Millisecond

	all := testJobs(23)
	failed, err := q.Send(context.Background(), all)
	if err != nil || len(failed) != 0 {
		t.Fatalf("Send = %d failed, %v", len(failed), err)
	}
	calls := spy.batches()
	if len(calls) != 4 {
		t.Fatalf("%d calls %v, want 3 and one retry", len(calls), calls)
	}
	retried := slices.Clone(calls[3])
	sort.Strings(retried)
	if !reflect.DeepEqual(retried, []string{"15", "22", "3", "7"}) {
		t.Errorf("retried entries %v, want only the failed ones", retried)
	}
	if got, want := receiveJobs(t, client, url, 23), endpointIDs(all); !reflect.DeepEqual(got, want) {
		t.Errorf("queue holds %v, want %v", got, want)
	}
}

func TestDeliveryJobsGiveUp(t *testing.T) {
	t.Parallel()
	url := deliveryQueue(t)
	spy := &batchSpy{fail: func(id string, _ int) (bool, bool) {
		switch id {
		case "1":
			return true, false // always fails: retried, then given up
		case "2":
			return true, true // the sender's fault: never retried
		}
		return false, false
	}}
	client := spy.client(t)
	q := NewDeliveryJobs(client, url)
	q.backoff = time.Millisecond

	all := testJobs(5)
	failed, err := q.Send(context.Background(), all)
	if err != nil {
		t.Fatal(err)
	}
	if got := endpointIDs(failed); !reflect.DeepEqual(got, []string{"ep_01", "ep_02"}) {
		t.Errorf("failed = %v, want ep_01 and ep_02", got)
	}
	if calls := spy.batches(); len(calls) != 4 || spy.sent["1"] != 4 || spy.sent["2"] != 1 {
		t.Errorf("calls %v, want the first and three retries of entry 1 only", calls)
	}
	if got := receiveJobs(t, client, url, 3); !reflect.DeepEqual(got, []string{"ep_00", "ep_03", "ep_04"}) {
		t.Errorf("queue holds %v", got)
	}
}

func TestDeliveryJobsSizeLimitedBatches(t *testing.T) {
	t.Parallel()
	url := deliveryQueue(t)
	spy := &batchSpy{}
	client := spy.client(t)

	big := json.RawMessage(`"` + strings.Repeat("x", 100<<10) + `"`)
	all := testJobs(5)
	for i := range all {
		all[i].Event.Data = big
	}
	failed, err := NewDeliveryJobs(client, url).Send(context.Background(), all)
	if err != nil || len(failed) != 0 {
		t.Fatalf("Send = %d failed, %v", len(failed), err)
	}
	if calls := spy.batches(); len(calls) != 3 {
		t.Errorf("%d calls, want 3 (two 100 KiB jobs fit in a batch)", len(calls))
	}
	if got := receiveJobs(t, client, url, 5); len(got) != 5 {
		t.Errorf("queue holds %d jobs, want 5", len(got))
	}
}

func TestDeliveryJobsQueueDown(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	client := sqs.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String("http://" + addr),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 1
			})
		},
	})
	all := testJobs(25)
	failed, err := NewDeliveryJobs(client, "http://"+addr+"/123456789012/delivery").Send(context.Background(), all)
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("error = %v, want domain.ErrUnavailable", err)
	}
	if !reflect.DeepEqual(endpointIDs(failed), endpointIDs(all)) {
		t.Errorf("failed = %v, want every job", endpointIDs(failed))
	}
}

func TestParseDeliveryJob(t *testing.T) {
	t.Parallel()
	j := testJob(1)
	j.ReplayID = "rp_1"
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseDeliveryJob(string(b))
	if err != nil || !reflect.DeepEqual(got, j) {
		t.Fatalf("ParseDeliveryJob = %+v, %v; want %+v", got, err, j)
	}
	for _, body := range []string{
		``, `{`, `{}`,
		`{"tenant_id":"t","endpoint_id":"ep","event":{}}`,
		`{"tenant_id":"t","event":{"id":"e","tenant_id":"t","type":"a.b","occurred_at":"2026-01-01T00:00:00Z"}}`,
		`{"tenant_id":"t","endpoint_id":"ep","event":{"id":"e","tenant_id":"u","type":"a.b","occurred_at":"2026-01-01T00:00:00Z"}}`,
	} {
		if _, err := ParseDeliveryJob(body); err == nil {
			t.Errorf("ParseDeliveryJob(%q) accepted", body)
		}
	}
}
