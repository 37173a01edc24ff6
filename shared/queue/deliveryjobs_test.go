package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/datajetty/webhooks/shared/dev/devstack"
	"github.com/datajetty/webhooks/shared/dev/localsqs"
	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
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

// receiveMessages makes one ReceiveMessage call, with every message attribute, and returns
// the messages as Lambda's event source would hand them over.
func receiveMessages(t *testing.T, client *sqs.Client, url string, wait int32) []events.SQSMessage {
	t.Helper()
	out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: &url, MaxNumberOfMessages: 10, WaitTimeSeconds: wait,
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	return localsqs.NewEvent(out.Messages, "", "us-east-1").Records
}

// receiveJobs reads want messages (or what arrives within a few seconds), parses them with
// ParseDeliveryMessage and returns the jobs' endpoint ids, sorted.
func receiveJobs(t *testing.T, client *sqs.Client, url string, want int) []string {
	t.Helper()
	var got []string
	parse := func(msgs []events.SQSMessage) {
		for _, m := range msgs {
			j, err := ParseDeliveryMessage(m)
			if err != nil {
				t.Fatalf("message %s: %v", m.MessageId, err)
			}
			got = append(got, j.EndpointID)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); len(got) < want && time.Now().Before(deadline); {
		parse(receiveMessages(t, client, url, 1))
	}
	// Anything beyond want is a duplicate send.
	parse(receiveMessages(t, client, url, 0))
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
	cfg, dead := testenv.DownAWSConfig(t)
	all := testJobs(25)
	failed, err := NewDeliveryJobs(sqs.NewFromConfig(cfg), dead+"/123456789012/delivery").Send(context.Background(), all)
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("error = %v, want domain.ErrUnavailable", err)
	}
	if !reflect.DeepEqual(endpointIDs(failed), endpointIDs(all)) {
		t.Errorf("failed = %v, want every job", endpointIDs(failed))
	}
}

// TestDeliveryJobsMessageFormat checks the wire format through the queue: the body is the
// rendered payload, the routing fields are String attributes, and ParseDeliveryMessage
// reads back the job (without the event's data, with the payload).
func TestDeliveryJobsMessageFormat(t *testing.T) {
	t.Parallel()
	url := deliveryQueue(t)
	client := (&batchSpy{}).client(t)

	j := testJob(1)
	j.Event.OccurredAt = time.Date(2026, 3, 14, 16, 9, 26, 535897932, time.FixedZone("CET", 3600))
	j.ReplayID = "rp_1"
	plain := testJob(2)
	preset := testJob(3)
	preset.Payload = []byte(`{"preset":true}`)
	if failed, err := NewDeliveryJobs(client, url).Send(context.Background(), []domain.DeliveryJob{j, plain, preset}); err != nil || len(failed) != 0 {
		t.Fatalf("Send = %d failed, %v", len(failed), err)
	}
	var msgs []events.SQSMessage
	for deadline := time.Now().Add(5 * time.Second); len(msgs) < 3 && time.Now().Before(deadline); {
		msgs = append(msgs, receiveMessages(t, client, url, 1)...)
	}
	if len(msgs) != 3 {
		t.Fatalf("received %d messages, want 3", len(msgs))
	}
	byEndpoint := map[string]events.SQSMessage{}
	for _, m := range msgs {
		byEndpoint[aws.ToString(m.MessageAttributes[JobAttrEndpointID].StringValue)] = m
	}

	m := byEndpoint[j.EndpointID]
	payload, err := j.Event.Payload()
	if err != nil {
		t.Fatal(err)
	}
	if m.Body != string(payload) {
		t.Errorf("body %s, want the payload %s", m.Body, payload)
	}
	wantAttrs := map[string]string{
		"job_version": "2", "tenant_id": "tenant-a", "endpoint_id": "ep_01", "event_id": "evt_1",
		"event_type": "export.done", "occurred_at": "2026-03-14T15:09:26.535897932Z", "replay_id": "rp_1",
	}
	gotAttrs := map[string]string{}
	for k, v := range m.MessageAttributes {
		if v.DataType != "String" {
			t.Errorf("attribute %s has data type %q, want String", k, v.DataType)
		}
		gotAttrs[k] = aws.ToString(v.StringValue)
	}
	if !reflect.DeepEqual(gotAttrs, wantAttrs) {
		t.Errorf("attributes %v, want %v", gotAttrs, wantAttrs)
	}
	got, err := ParseDeliveryMessage(m)
	want := j
	want.Event.Data = nil
	want.Event.OccurredAt = j.Event.OccurredAt.UTC()
	want.Payload = payload
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseDeliveryMessage = %+v, %v; want %+v", got, err, want)
	}

	if _, ok := byEndpoint[plain.EndpointID].MessageAttributes[JobAttrReplayID]; ok {
		t.Errorf("a job without a replay has a replay_id attribute")
	}
	if got := byEndpoint[preset.EndpointID].Body; got != `{"preset":true}` {
		t.Errorf("a job with a payload was sent as %s, want its payload as is", got)
	}
}

// TestDeliveryJobsSizeCountsAttributes: the batch size cap counts the attributes too. Two of
// these bodies fit in 256 KiB; with their attributes they do not.
func TestDeliveryJobsSizeCountsAttributes(t *testing.T) {
	t.Parallel()
	url := deliveryQueue(t)
	spy := &batchSpy{}
	client := spy.client(t)

	all := testJobs(4)
	for i := range all {
		all[i].Payload = []byte(`"` + strings.Repeat("y", maxBatchBytes/2-16) + `"`)
	}
	if 2*len(all[0].Payload) > maxBatchBytes {
		t.Fatal("two bodies alone must fit in a batch for this test")
	}
	failed, err := NewDeliveryJobs(client, url).Send(context.Background(), all)
	if err != nil || len(failed) != 0 {
		t.Fatalf("Send = %d failed, %v", len(failed), err)
	}
	if calls := spy.batches(); len(calls) != 4 {
		t.Errorf("%d calls %v, want 4 (one job each)", len(calls), calls)
	}
	if got := receiveJobs(t, client, url, 4); !reflect.DeepEqual(got, endpointIDs(all)) {
		t.Errorf("queue holds %v", got)
	}
}

// TestDeliveryJobsRefuseInvalid: a job its consumer would refuse is not sent; the others are.
func TestDeliveryJobsRefuseInvalid(t *testing.T) {
	t.Parallel()
	url := deliveryQueue(t)
	spy := &batchSpy{}
	client := spy.client(t)

	all := testJobs(3)
	all[1].Event.TenantID = "tenant-b"
	failed, err := NewDeliveryJobs(client, url).Send(context.Background(), all)
	if err == nil || !reflect.DeepEqual(endpointIDs(failed), []string{"ep_01"}) {
		t.Fatalf("Send = %v, %v; want ep_01 failed with an error", endpointIDs(failed), err)
	}
	if got := receiveJobs(t, client, url, 2); !reflect.DeepEqual(got, []string{"ep_00", "ep_02"}) {
		t.Errorf("queue holds %v", got)
	}
}

func TestEncodeDeliveryJobRefuses(t *testing.T) {
	t.Parallel()
	for name, mutate := range map[string]func(*domain.DeliveryJob){
		"no tenant":      func(j *domain.DeliveryJob) { j.TenantID, j.Event.TenantID = "", "" },
		"no endpoint":    func(j *domain.DeliveryJob) { j.EndpointID = "" },
		"no event id":    func(j *domain.DeliveryJob) { j.Event.ID = "" },
		"no event type":  func(j *domain.DeliveryJob) { j.Event.Type = "" },
		"no occurred_at": func(j *domain.DeliveryJob) { j.Event.OccurredAt = time.Time{} },
		"other tenant":   func(j *domain.DeliveryJob) { j.Event.TenantID = "tenant-b" },
		"bad data":       func(j *domain.DeliveryJob) { j.Event.Data = json.RawMessage(`{`) },
	} {
		j := testJob(1)
		mutate(&j)
		if _, _, err := EncodeDeliveryJob(j); err == nil {
			t.Errorf("%s: EncodeDeliveryJob accepted %+v", name, j)
		}
	}
}

// deliveryMessage is j's message as Lambda hands it over, without going through SQS.
func deliveryMessage(t *testing.T, j domain.DeliveryJob) events.SQSMessage {
	t.Helper()
	body, attrs, err := EncodeDeliveryJob(j)
	if err != nil {
		t.Fatal(err)
	}
	return localsqs.NewEvent([]types.Message{{MessageId: aws.String("m-1"), Body: &body, MessageAttributes: attrs}}, "", "us-east-1").Records[0]
}

func TestParseDeliveryMessage(t *testing.T) {
	t.Parallel()
	j := testJob(1)
	j.ReplayID = "rp_1"
	payload, err := j.Event.Payload()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseDeliveryMessage(deliveryMessage(t, j))
	want := j
	want.Event.Data = nil
	want.Payload = payload
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseDeliveryMessage = %+v, %v; want %+v", got, err, want)
	}

	str := func(s string) events.SQSMessageAttribute {
		return events.SQSMessageAttribute{DataType: "String", StringValue: &s}
	}
	for name, mutate := range map[string]func(*events.SQSMessage){
		"no attributes":   func(m *events.SQSMessage) { m.MessageAttributes = nil },
		"no job_version":  func(m *events.SQSMessage) { delete(m.MessageAttributes, "job_version") },
		"job_version 1":   func(m *events.SQSMessage) { m.MessageAttributes["job_version"] = str("1") },
		"job_version 3":   func(m *events.SQSMessage) { m.MessageAttributes["job_version"] = str("3") },
		"no tenant_id":    func(m *events.SQSMessage) { delete(m.MessageAttributes, "tenant_id") },
		"no endpoint_id":  func(m *events.SQSMessage) { delete(m.MessageAttributes, "endpoint_id") },
		"no event_id":     func(m *events.SQSMessage) { delete(m.MessageAttributes, "event_id") },
		"no event_type":   func(m *events.SQSMessage) { delete(m.MessageAttributes, "event_type") },
		"no occurred_at":  func(m *events.SQSMessage) { delete(m.MessageAttributes, "occurred_at") },
		"empty tenant_id": func(m *events.SQSMessage) { m.MessageAttributes["tenant_id"] = str("") },
		"no string value": func(m *events.SQSMessage) {
			m.MessageAttributes["event_id"] = events.SQSMessageAttribute{DataType: "Binary"}
		},
		"bad occurred_at":  func(m *events.SQSMessage) { m.MessageAttributes["occurred_at"] = str("yesterday") },
		"date occurred_at": func(m *events.SQSMessage) { m.MessageAttributes["occurred_at"] = str("2026-01-01") },
		"empty body":       func(m *events.SQSMessage) { m.Body = "" },
		// A version 1 job: the whole job as JSON in the body, no attributes.
		"version 1 job": func(m *events.SQSMessage) {
			m.MessageAttributes = map[string]events.SQSMessageAttribute{}
			m.Body = `{"tenant_id":"tenant-a","endpoint_id":"ep_01","event":{"id":"evt_1","tenant_id":"tenant-a","type":"export.done","occurred_at":"2026-01-01T00:00:00Z","data":{}}}`
		},
	} {
		m := deliveryMessage(t, j)
		mutate(&m)
		if got, err := ParseDeliveryMessage(m); err == nil {
			t.Errorf("%s: ParseDeliveryMessage accepted it as %+v", name, got)
		}
	}
}

// TestLargestEventFitsADeliveryJob: the largest envelope ingest accepts, made of the
// characters an escaping encoder would blow up (<, >, &, U+2028), becomes a delivery job
// (body and attributes, as SQS counts them) within the DeliveryQueue's MaximumMessageSize in
// template.yaml, and the queue made from the template takes it and returns it intact.
func TestLargestEventFitsADeliveryJob(t *testing.T) {
	t.Parallel()
	tpl, err := devstack.LoadTemplate(filepath.Join(testenv.RepoRoot(), "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	limit := 256 << 10 // SQS's classic limit, when the template does not say
	if v, ok := tpl.Resources["DeliveryQueue"].Properties["MaximumMessageSize"]; ok {
		n, ok := v.(int)
		if !ok {
			t.Fatalf("DeliveryQueue MaximumMessageSize %v is not a number", v)
		}
		limit = n
	}

	longest := strings.Repeat("t", domain.MaxTenantIDLength)
	head := `{"id":"` + strings.Repeat(`\"`, 128) + `","tenant_id":"` + longest + `","type":"` + strings.Repeat("x", domain.MaxEventTypeLength) +
		`","occurred_at":"2026-11-27T12:34:56.123456789+14:00","data":"`
	worst := []string{"<", ">", "&", "\u2028"}
	var data strings.Builder
	for i := 0; len(head)+data.Len()+len(`"}`) < domain.MaxEventBytes; i++ {
		c := worst[i%len(worst)]
		if len(head)+data.Len()+len(c)+len(`"}`) > domain.MaxEventBytes {
			c = "<"
		}
		data.WriteString(c)
	}
	envelope := head + data.String() + `"}`
	if len(envelope) != domain.MaxEventBytes {
		t.Fatalf("test envelope is %d bytes, want exactly %d", len(envelope), domain.MaxEventBytes)
	}
	ev, err := domain.ParseEvent([]byte(envelope))
	if err != nil {
		t.Fatalf("the largest envelope is refused: %v", err)
	}
	job := domain.DeliveryJob{TenantID: ev.TenantID, EndpointID: domain.NewID(domain.EndpointIDPrefix), Event: ev, ReplayID: domain.NewID(domain.ReplayIDPrefix)}
	body, attrs, err := EncodeDeliveryJob(job)
	if err != nil {
		t.Fatal(err)
	}
	if size := len(body) + attrsSize(attrs); size > limit {
		t.Fatalf("the largest event's job is %d bytes (body %d); the DeliveryQueue takes %d", size, len(body), limit)
	} else {
		t.Logf("largest job: %d bytes of %d (body %d, attributes %d)", size, limit, len(body), attrsSize(attrs))
	}
	if !strings.Contains(body, data.String()) {
		t.Fatal("the job's body does not hold the data as sent")
	}

	url := deliveryQueue(t)
	client := sqs.NewFromConfig(testenv.AWSConfig(t))
	if failed, err := NewDeliveryJobs(client, url).Send(context.Background(), []domain.DeliveryJob{job}); err != nil || len(failed) != 0 {
		t.Fatalf("Send = %d failed, %v", len(failed), err)
	}
	msgs := receiveMessages(t, client, url, 5)
	if len(msgs) != 1 {
		t.Fatalf("received %d messages", len(msgs))
	}
	got, err := ParseDeliveryMessage(msgs[0])
	if err != nil || string(got.Payload) != body {
		t.Fatalf("the job came back changed (%v)", err)
	}
}
