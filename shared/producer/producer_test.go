package producer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/datajetty/webhooks/shared/dev/awsmeter"
	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/producer"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func event(i int) domain.Event {
	return domain.Event{
		ID: fmt.Sprintf("evt_%03d", i), TenantID: "acme", Type: "export.done",
		OccurredAt: time.Now().Add(-time.Minute), Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
	}
}

func newQueue(t *testing.T, cfg aws.Config) string {
	t.Helper()
	out, err := sqs.NewFromConfig(cfg).CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(testenv.Prefix(t) + "ingest")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.QueueUrl)
}

// drain receives every message of the queue and returns their bodies' ids.
func drain(t *testing.T, client *sqs.Client, queue string) []string {
	t.Helper()
	var ids []string
	for empty := 0; empty < 2; {
		out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queue), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			empty++
			continue
		}
		for _, m := range out.Messages {
			e, err := domain.ParseEvent([]byte(aws.ToString(m.Body)))
			if err != nil {
				t.Fatalf("a published message is not a valid envelope: %v", err)
			}
			ids = append(ids, e.ID)
			if _, err := client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(queue), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	sort.Strings(ids)
	return ids
}

func publishAll(t *testing.T, p *producer.Producer, n int) []error {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = p.Publish(context.Background(), event(i)) })
	}
	wg.Wait()
	return errs
}

func TestPublishSendsFullBatches(t *testing.T) {
	t.Parallel()
	base := testenv.AWSConfig(t)
	queue := newQueue(t, base)
	meter := awsmeter.New(base)
	// A long linger: the 25 events are all handed over long before it ends, so the batches
	// are decided by count alone.
	// Long call timeouts: a loaded test machine can take seconds to answer.
	p := producer.New(sqs.NewFromConfig(meter.Attach(base, "producer")), queue, producer.Options{Linger: 2 * time.Second, Timeout: time.Minute})
	start := time.Now()
	for i, err := range publishAll(t, p, 25) {
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	// Two full batches leave at once; the last five wait for the linger.
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("the partial batch left after %s, before its linger", took)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	var calls int
	for _, l := range meter.Lines() {
		if l.Operation != "SendMessageBatch" {
			t.Errorf("unexpected call %s", l.Key)
		}
		calls += l.Calls
	}
	if calls != 3 {
		t.Errorf("%d SendMessageBatch calls for 25 events, want 3 (10, 10, 5)", calls)
	}
	got := drain(t, sqs.NewFromConfig(base), queue)
	if len(got) != 25 || got[0] != "evt_000" || got[24] != "evt_024" {
		t.Errorf("queue holds %d events %v, want evt_000..evt_024 once each", len(got), got)
	}
	if err := p.Publish(context.Background(), event(99)); !errors.Is(err, producer.ErrClosed) {
		t.Errorf("Publish after Close: %v, want ErrClosed", err)
	}
}

func TestPublishRefusesWhatIngestWouldRefuse(t *testing.T) {
	t.Parallel()
	base := testenv.AWSConfig(t)
	queue := newQueue(t, base)
	meter := awsmeter.New(base)
	p := producer.New(sqs.NewFromConfig(meter.Attach(base, "producer")), queue, producer.Options{Timeout: time.Minute})
	t.Cleanup(func() { _ = p.Close() })
	cases := map[string]struct {
		mutate func(*domain.Event)
		field  string
	}{
		"no id":          {func(e *domain.Event) { e.ID = "" }, "id"},
		"bad type":       {func(e *domain.Event) { e.Type = "Export Done" }, "type"},
		"undeclared":     {func(e *domain.Event) { e.Type = "export.dnoe" }, "type"},
		"no data":        {func(e *domain.Event) { e.Data = nil }, "data"},
		"data not JSON":  {func(e *domain.Event) { e.Data = json.RawMessage(`{`) }, "data"},
		"in the future":  {func(e *domain.Event) { e.OccurredAt = time.Now().Add(time.Hour) }, "occurred_at"},
		"over the limit": {func(e *domain.Event) { e.Data = json.RawMessage(`"` + strings.Repeat("x", domain.MaxEventBytes) + `"`) }, ""},
	}
	for name, c := range cases {
		e := event(1)
		c.mutate(&e)
		err := p.Publish(context.Background(), e)
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Field != c.field {
			t.Errorf("%s: %v, want an invalid-request error on field %q", name, err, c.field)
		}
	}
	if lines := meter.Lines(); len(lines) != 0 {
		t.Errorf("invalid events were sent: %v", lines)
	}
}

// failingProxy forwards to the emulator, but the first time it sees each of the ids in
// failOnce in a SendMessageBatch it keeps that entry from the emulator and reports it
// failed (not the sender's fault), as SQS does under internal errors.
type failingProxy struct {
	target   *url.URL
	mu       sync.Mutex
	failOnce map[string]bool // event ids
	calls    int
}

func (fp *failingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var failedIDs []string
	if r.Header.Get("X-Amz-Target") == "AmazonSQS.SendMessageBatch" {
		var in map[string]any
		if err := json.Unmarshal(body, &in); err == nil {
			fp.mu.Lock()
			fp.calls++
			var kept []any
			for _, e := range in["Entries"].([]any) {
				entry := e.(map[string]any)
				ev, _ := domain.ParseEvent([]byte(entry["MessageBody"].(string)))
				if fp.failOnce[ev.ID] {
					delete(fp.failOnce, ev.ID)
					failedIDs = append(failedIDs, entry["Id"].(string))
					continue
				}
				kept = append(kept, entry)
			}
			fp.mu.Unlock()
			in["Entries"] = kept
			body, _ = json.Marshal(in)
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	proxy := httputil.NewSingleHostReverseProxy(fp.target)
	if len(failedIDs) > 0 {
		proxy.ModifyResponse = func(resp *http.Response) error {
			raw, _ := io.ReadAll(resp.Body)
			var out map[string]any
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
			var failed []any
			for _, id := range failedIDs {
				failed = append(failed, map[string]any{"Id": id, "SenderFault": false, "Code": "InternalError", "Message": "injected"})
			}
			out["Failed"] = failed
			raw, _ = json.Marshal(out)
			resp.Body = io.NopCloser(bytes.NewReader(raw))
			resp.ContentLength = int64(len(raw))
			resp.Header.Del("Content-Length")
			resp.Header.Del("X-Amz-Crc32")
			return nil
		}
	}
	proxy.ServeHTTP(w, r)
}

func TestPublishRetriesFailedEntries(t *testing.T) {
	t.Parallel()
	base := testenv.AWSConfig(t)
	queue := newQueue(t, base)
	target, err := url.Parse(testenv.Endpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	fp := &failingProxy{target: target, failOnce: map[string]bool{"evt_003": true, "evt_007": true}}
	srv := httptest.NewServer(fp)
	t.Cleanup(srv.Close)
	viaProxy := base.Copy()
	viaProxy.BaseEndpoint = aws.String(srv.URL)
	p := producer.New(sqs.NewFromConfig(viaProxy), queue, producer.Options{Linger: time.Second, Backoff: time.Millisecond, Timeout: time.Minute})
	for i, err := range publishAll(t, p, 10) {
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	_ = p.Close()
	fp.mu.Lock()
	calls := fp.calls
	fp.mu.Unlock()
	if calls != 2 {
		t.Errorf("%d SendMessageBatch calls, want 2 (the batch, then its two failed entries)", calls)
	}
	if got := drain(t, sqs.NewFromConfig(base), queue); len(got) != 10 {
		t.Errorf("queue holds %v, want the 10 events once each", got)
	}
}
