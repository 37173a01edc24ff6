package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/datajetty/webhooks/shared/dev/localsqs"
	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/eventtypes"
	"github.com/datajetty/webhooks/shared/ingest"
	"github.com/datajetty/webhooks/shared/queue"
	"github.com/datajetty/webhooks/shared/store"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// secretMarker is in every test event's data; it must never reach the logs.
const secretMarker = "s3cr3t-payload"

// harness is a provisioned stack with the real adapters behind a Handler.
type harness struct {
	t           testing.TB
	h           *ingest.Handler
	deps        ingest.Deps
	events      *store.Events
	endpoints   *store.Endpoints
	deliveries  *store.Deliveries
	sqs         *sqs.Client
	deliveryURL string
	dlqURL      string
	logs        *testenv.Buffer
	// batchCalls counts SendMessageBatch calls.
	mu         sync.Mutex
	batchCalls int
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	stack := testenv.Stack(t, nil)
	cfg := testenv.AWSConfig(t)
	hs := &harness{t: t, logs: &testenv.Buffer{}}
	count := middleware.InitializeMiddlewareFunc("CountBatches", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		if _, ok := in.Parameters.(*sqs.SendMessageBatchInput); ok {
			hs.mu.Lock()
			hs.batchCalls++
			hs.mu.Unlock()
		}
		return next.HandleInitialize(ctx, in)
	})
	hs.sqs = sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error { return s.Initialize.Add(count, middleware.After) })
	})
	db := dynamodb.NewFromConfig(cfg)
	hs.events = store.NewEvents(db, stack.Env["WEBHOOKS_EVENTS_TABLE"])
	hs.endpoints = store.NewEndpoints(db, stack.Env["WEBHOOKS_ENDPOINTS_TABLE"])
	hs.deliveries = store.NewDeliveries(db, stack.Env["WEBHOOKS_DELIVERIES_TABLE"])
	hs.deliveryURL = stack.Env["WEBHOOKS_DELIVERY_QUEUE_URL"]
	hs.dlqURL = stack.Env["WEBHOOKS_INGEST_DLQ_URL"]
	hs.deps = ingest.Deps{
		Events:      hs.events,
		Endpoints:   hs.endpoints,
		Jobs:        queue.NewDeliveryJobs(hs.sqs, hs.deliveryURL),
		DeadLetters: queue.NewDeadLetters(hs.sqs, hs.dlqURL),
		Skips:       hs.deliveries,
		Logger:      slog.New(slog.NewJSONHandler(hs.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	hs.with(nil)
	t.Cleanup(func() {
		if strings.Contains(hs.logs.String(), secretMarker) {
			t.Errorf("an event's data reached the logs:\n%s", hs.logs.String())
		}
	})
	return hs
}

// with rebuilds the handler with the harness's dependencies as change leaves them.
func (hs *harness) with(change func(*ingest.Deps)) {
	hs.t.Helper()
	if change != nil {
		change(&hs.deps)
	}
	h, err := ingest.New(hs.deps)
	if err != nil {
		hs.t.Fatal(err)
	}
	hs.h = h
}

func (hs *harness) batches() int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.batchCalls
}

var created = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// endpoint stores an endpoint directly and returns its id.
func (hs *harness) endpoint(tenant string, status domain.EndpointStatus, patterns ...string) string {
	hs.t.Helper()
	ep := domain.Endpoint{
		TenantID: tenant, ID: domain.NewID(domain.EndpointIDPrefix), URL: "https://example.com/" + domain.NewID(""),
		Events: patterns, Status: status, Version: 1, CreatedAt: created, UpdatedAt: created,
		SecretCiphertext: []byte{1},
	}
	if err := hs.endpoints.CreateEndpoint(context.Background(), ep); err != nil {
		hs.t.Fatal(err)
	}
	return ep.ID
}

// handle runs one invocation and returns the failed message ids, sorted.
func (hs *harness) handle(msgs ...message) []string {
	hs.t.Helper()
	var ev events.SQSEvent
	for _, m := range msgs {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: m.id, Body: m.body, EventSource: "aws:sqs"})
	}
	resp, err := hs.h.Handle(context.Background(), ev)
	if err != nil {
		hs.t.Fatalf("Handle returned an error: %v", err)
	}
	failed := []string{}
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	sort.Strings(failed)
	return failed
}

// jobs reads the delivery queue until it stays empty and returns "event_id>endpoint_id"
// for every job, sorted.
func (hs *harness) jobs() []string {
	hs.t.Helper()
	out := []string{}
	for {
		res, err := hs.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: &hs.deliveryURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
		if err != nil {
			hs.t.Fatal(err)
		}
		if len(res.Messages) == 0 {
			sort.Strings(out)
			return out
		}
		for _, m := range localsqs.NewEvent(res.Messages, "", "us-east-1").Records {
			j, err := queue.ParseDeliveryMessage(m)
			if err != nil {
				hs.t.Fatal(err)
			}
			if j.TenantID != j.Event.TenantID || !strings.Contains(string(j.Payload), secretMarker) {
				hs.t.Errorf("job %+v does not carry its event's payload", j)
			}
			out = append(out, j.Event.ID+">"+j.EndpointID)
		}
	}
}

// deadLetters reads the ingest DLQ: source message id → reason.
func (hs *harness) deadLetters() map[string]string {
	hs.t.Helper()
	out := map[string]string{}
	for {
		res, err := hs.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: &hs.dlqURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
		if err != nil {
			hs.t.Fatal(err)
		}
		if len(res.Messages) == 0 {
			return out
		}
		for _, m := range res.Messages {
			out[aws.ToString(m.MessageAttributes[queue.AttrSourceMessageID].StringValue)] =
				aws.ToString(m.MessageAttributes[queue.AttrReason].StringValue)
		}
	}
}

// stored returns the ids of the tenant's stored events around t1.
func (hs *harness) stored(tenant string) []string {
	hs.t.Helper()
	evs, next, err := hs.events.Page(context.Background(), tenant, t1.Add(-time.Hour), t1.Add(time.Hour), "", 100)
	if err != nil || next != "" {
		hs.t.Fatalf("Page: %v, next %q", err, next)
	}
	ids := []string{}
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	return ids
}

type message struct{ id, body string }

var t1 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

func envelope(tenant, id, typ string) string {
	return fmt.Sprintf(`{"id":%q,"tenant_id":%q,"type":%q,"occurred_at":%q,"data":{"note":%q}}`,
		id, tenant, typ, t1.Format(time.RFC3339Nano), secretMarker)
}

func pairs(eventID string, endpointIDs ...string) []string {
	out := []string{}
	for _, ep := range endpointIDs {
		out = append(out, eventID+">"+ep)
	}
	return out
}

func sorted(s []string) []string {
	sort.Strings(s)
	return s
}

func TestFanOutToMatchingActiveEndpoints(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	exact := hs.endpoint("tenant-a", domain.StatusActive, "export.done")
	wildcard := hs.endpoint("tenant-a", domain.StatusActive, "export.*")
	all := hs.endpoint("tenant-a", domain.StatusActive, "*")
	hs.endpoint("tenant-a", domain.StatusActive, "import.done", "export.started")
	paused := hs.endpoint("tenant-a", domain.StatusDisabled, "*")
	pausedElsewhere := hs.endpoint("tenant-a", domain.StatusDisabled, "import.*")
	hs.endpoint("tenant-b", domain.StatusActive, "*")
	// A tenant whose id could collide with tenant-a's keys if they were not length-prefixed.
	hs.endpoint("tenant-a#x", domain.StatusActive, "*")

	if failed := hs.handle(message{"m-1", envelope("tenant-a", "evt_1", "export.done")}); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if got, want := hs.jobs(), sorted(pairs("evt_1", exact, wildcard, all)); !reflect.DeepEqual(got, want) {
		t.Errorf("jobs %v, want %v", got, want)
	}
	// A disabled endpoint that subscribes gets no job but a record saying why; one that
	// does not subscribe gets nothing.
	log, _, err := hs.deliveries.List(context.Background(), "tenant-a", paused, "", 10, "")
	if err != nil || len(log) != 1 || log[0].EventID != "evt_1" || log[0].Status != domain.DeliverySkipped || log[0].ErrorClass != domain.SkippedDisabled {
		t.Errorf("delivery log of the disabled endpoint: %+v, %v; want evt_1 skipped (disabled)", log, err)
	}
	if log, _, _ := hs.deliveries.List(context.Background(), "tenant-a", pausedElsewhere, "", 10, ""); len(log) != 0 {
		t.Errorf("a disabled endpoint that does not subscribe got records: %+v", log)
	}
	// Stored once fanned out.
	e, _ := domain.ParseEvent([]byte(envelope("tenant-a", "evt_1", "export.done")))
	if stored, err := hs.events.Stored(context.Background(), []domain.Event{e}); err != nil || !stored[0] {
		t.Errorf("after the fan-out: Stored = %v, %v; want stored", stored, err)
	}

	// An event nobody subscribes to: stored, no jobs, acknowledged.
	if failed := hs.handle(message{"m-2", envelope("tenant-c", "evt_2", "export.done")}); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if got := hs.jobs(); len(got) != 0 {
		t.Errorf("jobs %v for a tenant without endpoints", got)
	}
	if got := hs.stored("tenant-c"); !reflect.DeepEqual(got, []string{"evt_2"}) {
		t.Errorf("tenant-c stored %v", got)
	}
}

func TestDuplicateIngest(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	a := hs.endpoint("tenant-a", domain.StatusActive, "*")
	b := hs.endpoint("tenant-a", domain.StatusActive, "export.*")
	body := envelope("tenant-a", "evt_1", "export.done")

	// The same message twice (an SQS redelivery), in two invocations.
	if failed := hs.handle(message{"m-1", body}); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if failed := hs.handle(message{"m-1", body}); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	// The same event in two records of one batch (a producer retry), plus another event.
	if failed := hs.handle(message{"m-2", body}, message{"m-3", envelope("tenant-a", "evt_2", "export.done")}, message{"m-4", body}); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	want := sorted(append(pairs("evt_1", a, b), pairs("evt_2", a, b)...))
	if got := hs.jobs(); !reflect.DeepEqual(got, want) {
		t.Errorf("jobs %v, want one per endpoint and event: %v", got, want)
	}
	if got := hs.stored("tenant-a"); !reflect.DeepEqual(got, []string{"evt_1", "evt_2"}) {
		t.Errorf("stored %v", got)
	}

	// Two new copies of one event in one batch: fanned out once.
	body3 := envelope("tenant-a", "evt_3", "export.done")
	if failed := hs.handle(message{"m-5", body3}, message{"m-6", body3}); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if got, want := hs.jobs(), sorted(pairs("evt_3", a, b)); !reflect.DeepEqual(got, want) {
		t.Errorf("jobs %v, want %v", got, want)
	}
}

func TestMalformedEventsAreDeadLettered(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	ep := hs.endpoint("tenant-a", domain.StatusActive, "*")
	missingType := fmt.Sprintf(`{"id":"evt_x","tenant_id":"tenant-a","occurred_at":%q,"data":{"note":%q}}`, t1.Format(time.RFC3339), secretMarker)
	oversized := fmt.Sprintf(`{"id":"evt_y","tenant_id":"tenant-a","type":"export.done","occurred_at":%q,"data":{"note":%q,"pad":"%s"}}`,
		t1.Format(time.RFC3339), secretMarker, strings.Repeat("x", domain.MaxEventBytes))

	failed := hs.handle(
		message{"m-json", `{"id": "evt_z", ` + secretMarker},
		message{"m-type", missingType},
		message{"m-big", oversized},
		message{"m-future", fmt.Sprintf(`{"id":"evt_f","tenant_id":"tenant-a","type":"export.done","occurred_at":%q,"data":{}}`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))},
		message{"m-ok", envelope("tenant-a", "evt_1", "export.done")},
	)
	if len(failed) != 0 {
		t.Fatalf("failed %v; malformed events must be acknowledged", failed)
	}
	dl := hs.deadLetters()
	for id, want := range map[string]string{"m-json": "not valid JSON", "m-type": "type", "m-big": "limit", "m-future": "ahead of the service's clock"} {
		if !strings.Contains(dl[id], want) {
			t.Errorf("dead letter of %s: reason %q, want it to mention %q", id, dl[id], want)
		}
	}
	if len(dl) != 4 {
		t.Errorf("dead letters %v, want 4", dl)
	}
	if got := hs.jobs(); !reflect.DeepEqual(got, pairs("evt_1", ep)) {
		t.Errorf("jobs %v", got)
	}

	// When the DLQ itself cannot be reached, the message is retried, never dropped.
	hs.with(func(d *ingest.Deps) { d.DeadLetters = failingDLQ{} })
	if failed := hs.handle(message{"m-json2", `nope`}, message{"m-ok2", envelope("tenant-a", "evt_2", "export.done")}); !reflect.DeepEqual(failed, []string{"m-json2"}) {
		t.Errorf("failed %v, want only m-json2", failed)
	}
}

type failingDLQ struct{}

func (failingDLQ) Send(context.Context, string, string, string) error {
	return domain.Unavailable("queue", fmt.Errorf("down"))
}

// flakyJobs wraps a JobSender and reports the jobs of chosen events as not sent, without
// sending them, while fail is set.
type flakyJobs struct {
	ingest.JobSender
	mu   sync.Mutex
	fail map[string]bool
}

func (f *flakyJobs) Send(ctx context.Context, jobs []domain.DeliveryJob) ([]domain.DeliveryJob, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var send, failed []domain.DeliveryJob
	for i, j := range jobs {
		// Only the second job of a failing event fails: its first job is sent.
		if f.fail[j.Event.ID] && i > 0 && jobs[i-1].Event.ID == j.Event.ID {
			failed = append(failed, j)
		} else {
			send = append(send, j)
		}
	}
	more, err := f.JobSender.Send(ctx, send)
	return append(failed, more...), err
}

func TestJobSendFailureIsRetried(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	a := hs.endpoint("tenant-a", domain.StatusActive, "*")
	b := hs.endpoint("tenant-a", domain.StatusActive, "export.*")
	flaky := &flakyJobs{JobSender: hs.deps.Jobs, fail: map[string]bool{"evt_1": true}}
	hs.with(func(d *ingest.Deps) { d.Jobs = flaky })

	m1 := message{"m-1", envelope("tenant-a", "evt_1", "export.done")}
	m2 := message{"m-2", envelope("tenant-a", "evt_2", "export.done")}
	if failed := hs.handle(m1, m2); !reflect.DeepEqual(failed, []string{"m-1"}) {
		t.Fatalf("failed %v, want m-1", failed)
	}
	e1, _ := domain.ParseEvent([]byte(m1.body))
	if stored, err := hs.events.Stored(context.Background(), []domain.Event{e1}); err != nil || stored[0] {
		t.Fatalf("evt_1: Stored = %v, %v; an event whose jobs did not all go out must not be stored", stored, err)
	}
	first := hs.jobs()
	if len(first) != 3 {
		t.Fatalf("first jobs %v, want evt_2's two and one of evt_1's", first)
	}

	// SQS redelivers m-1: it fans out again (receivers de-duplicate on webhook-id).
	flaky.fail = nil
	if failed := hs.handle(m1); len(failed) != 0 {
		t.Fatalf("retry failed %v", failed)
	}
	got := sorted(append(first, hs.jobs()...))
	// One of evt_1's jobs went out twice (first try and retry): 3 + 2 jobs.
	want := append(pairs("evt_2", a, b), pairs("evt_1", a, b)...)
	if len(got) != 5 || !covers(got, want) {
		t.Errorf("jobs %v, want every endpoint for both events", got)
	}
	if stored, err := hs.events.Stored(context.Background(), []domain.Event{e1}); err != nil || !stored[0] {
		t.Errorf("evt_1 after retry: Stored = %v, %v; want stored", stored, err)
	}
	// Fanned out: a further redelivery sends nothing.
	if failed := hs.handle(m1); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if got := hs.jobs(); len(got) != 0 {
		t.Errorf("jobs %v after a redelivery of a fanned-out event", got)
	}
}

// covers reports whether every element of got is in want and every distinct element of
// want is in got.
func covers(got, want []string) bool {
	in := map[string]bool{}
	for _, w := range want {
		in[w] = true
	}
	seen := map[string]bool{}
	for _, g := range got {
		if !in[g] {
			return false
		}
		seen[g] = true
	}
	return len(seen) == len(in)
}

// flakyStore fails Put for chosen events, and Stored while lookups is set, with a
// transient error.
type flakyStore struct {
	ingest.EventStore
	fail    map[string]bool
	lookups bool
}

func (f flakyStore) Stored(ctx context.Context, evs []domain.Event) ([]bool, error) {
	if f.lookups {
		return nil, domain.Unavailable("database", fmt.Errorf("throttled"))
	}
	return f.EventStore.Stored(ctx, evs)
}

func (f flakyStore) Put(ctx context.Context, e domain.Event) (bool, error) {
	if f.fail[e.ID] {
		return false, domain.Unavailable("database", fmt.Errorf("throttled"))
	}
	return f.EventStore.Put(ctx, e)
}

func TestTransientStoreErrorFailsOnlyThatRecord(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	a := hs.endpoint("tenant-a", domain.StatusActive, "*")
	hs.with(func(d *ingest.Deps) {
		d.Events = flakyStore{EventStore: hs.events, fail: map[string]bool{"evt_1": true}}
	})

	m1, m2 := message{"m-1", envelope("tenant-a", "evt_1", "export.done")}, message{"m-2", envelope("tenant-a", "evt_2", "export.done")}
	failed := hs.handle(m1, m2)
	if !reflect.DeepEqual(failed, []string{"m-1"}) {
		t.Fatalf("failed %v, want m-1", failed)
	}
	// The jobs went out before the store failed: evt_1 was delivered, not stored.
	if got := hs.jobs(); !reflect.DeepEqual(got, sorted(append(pairs("evt_1", a), pairs("evt_2", a)...))) {
		t.Errorf("jobs %v", got)
	}
	if logs := hs.logs.String(); !strings.Contains(logs, `"event_id":"evt_1"`) || !strings.Contains(logs, "throttled") {
		t.Errorf("the failure is not logged with the event id:\n%s", logs)
	}
	// SQS redelivers m-1: not stored yet, so it fans out again (a duplicate for the
	// receiver, never a loss) and is stored; m-2 is recognised as done.
	hs.with(func(d *ingest.Deps) { d.Events = hs.events })
	if failed := hs.handle(m1, m2); len(failed) != 0 {
		t.Fatalf("retry failed %v", failed)
	}
	if got := hs.jobs(); !reflect.DeepEqual(got, pairs("evt_1", a)) {
		t.Errorf("retry jobs %v, want evt_1's only", got)
	}
	if got := hs.stored("tenant-a"); !reflect.DeepEqual(got, []string{"evt_1", "evt_2"}) {
		t.Errorf("stored %v", got)
	}
}

func TestLookupFailureRetriesTheBatchUnsent(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	hs.endpoint("tenant-a", domain.StatusActive, "*")
	hs.with(func(d *ingest.Deps) { d.Events = flakyStore{EventStore: hs.events, lookups: true} })
	failed := hs.handle(message{"m-1", envelope("tenant-a", "evt_1", "export.done")}, message{"m-bad", "nope"},
		message{"m-2", envelope("tenant-a", "evt_2", "export.done")})
	if !reflect.DeepEqual(failed, []string{"m-1", "m-2"}) {
		t.Fatalf("failed %v, want m-1 and m-2 (the malformed one is dead-lettered)", failed)
	}
	if got := hs.jobs(); len(got) != 0 {
		t.Errorf("jobs %v sent although the events could not be looked up", got)
	}
	if got := hs.stored("tenant-a"); len(got) != 0 {
		t.Errorf("stored %v", got)
	}
}

// countingLister counts ListEndpoints calls.
type countingLister struct {
	ingest.EndpointLister
	mu    sync.Mutex
	calls int
}

func (c *countingLister) ListEndpoints(ctx context.Context, tenantID string, limit int, afterID string) ([]domain.Endpoint, bool, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	return c.EndpointLister.ListEndpoints(ctx, tenantID, limit, afterID)
}

func TestFanOutInFullBatches(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	// 101 endpoints (two listing pages), 25 of them matching.
	var matching []string
	for i := range 101 {
		if i%4 == 0 && len(matching) < 25 {
			matching = append(matching, hs.endpoint("tenant-a", domain.StatusActive, "export.*"))
		} else {
			hs.endpoint("tenant-a", domain.StatusActive, "import.done")
		}
	}
	lister := &countingLister{EndpointLister: hs.endpoints}
	hs.with(func(d *ingest.Deps) { d.Endpoints = lister })

	if failed := hs.handle(message{"m-1", envelope("tenant-a", "evt_1", "export.done")}); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if n := hs.batches(); n != 3 {
		t.Errorf("%d SendMessageBatch calls for 25 jobs, want 3", n)
	}
	if got, want := hs.jobs(), sorted(pairs("evt_1", matching...)); !reflect.DeepEqual(got, want) {
		t.Errorf("jobs %v, want %v", got, want)
	}
	if lister.calls != 2 {
		t.Errorf("%d ListEndpoints calls, want 2 (two pages)", lister.calls)
	}

	// Two events of one tenant in a batch: one listing, and their 50 jobs in 5 full batches.
	lister.calls = 0
	before := hs.batches()
	if failed := hs.handle(message{"m-2", envelope("tenant-a", "evt_2", "export.done")}, message{"m-3", envelope("tenant-a", "evt_3", "export.done")}); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if n := hs.batches() - before; n != 5 {
		t.Errorf("%d SendMessageBatch calls for 50 jobs, want 5", n)
	}
	if lister.calls != 2 {
		t.Errorf("%d ListEndpoints calls for two events of one tenant, want 2 (one listing)", lister.calls)
	}
	if got := hs.jobs(); len(got) != 50 {
		t.Errorf("%d jobs, want 50", len(got))
	}
}

func TestSampleEvent(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	ep := hs.endpoint("demo-tenant", domain.StatusActive, "export.*")
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "events", "ingest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Records) == 0 || ev.Records[0].EventSource != "aws:sqs" {
		t.Fatalf("events/ingest.json is not an SQS event")
	}
	e, err := domain.ParseEvent([]byte(ev.Records[0].Body))
	if err != nil || e.TenantID != "demo-tenant" {
		t.Fatalf("sample body: %+v, %v", e, err)
	}
	resp, err := hs.h.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v", resp, err)
	}
	res, err := hs.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: &hs.deliveryURL, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
	if err != nil || len(res.Messages) != 1 {
		t.Fatalf("receive: %v, %d jobs", err, len(res.Messages))
	}
	payload, err := e.Payload()
	if err != nil {
		t.Fatal(err)
	}
	m := localsqs.NewEvent(res.Messages, "", "us-east-1").Records[0]
	if j, err := queue.ParseDeliveryMessage(m); err != nil || j.EndpointID != ep || j.Event.ID != e.ID || string(j.Payload) != string(payload) {
		t.Errorf("job %+v, %v", j, err)
	}
}

func TestHandlerMissingDependency(t *testing.T) {
	t.Parallel()
	if _, err := ingest.New(ingest.Deps{}); err == nil {
		t.Error("a handler without dependencies did not report it")
	}
}

// TestFutureEventIsAcceptedWhenItsTimeComes: an event dated beyond the tolerated clock skew
// is dead-lettered with a reason giving both clocks; the same message redriven once its
// time has come is ingested and fanned out with its original occurred_at.
func TestFutureEventIsAcceptedWhenItsTimeComes(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	ep := hs.endpoint("tenant-a", domain.StatusActive, "*")
	clock := t1.Add(-domain.MaxClockSkew - 10*time.Minute)
	hs.with(func(d *ingest.Deps) { d.Now = func() time.Time { return clock } })
	body := envelope("tenant-a", "evt_future", "export.done")

	if failed := hs.handle(message{"m-1", body}); len(failed) != 0 {
		t.Fatalf("failed %v; a future event is dead-lettered and acknowledged", failed)
	}
	want := "occurred_at " + t1.Format(time.RFC3339Nano) + " is 15m0s ahead of the service's clock (" + clock.Format(time.RFC3339) + "); at most 5m0s is tolerated"
	if dl := hs.deadLetters(); dl["m-1"] != want {
		t.Fatalf("dead letters %v, want m-1 with reason %q", dl, want)
	}
	if got := hs.jobs(); len(got) != 0 {
		t.Fatalf("a refused event was fanned out: %v", got)
	}

	clock = t1.Add(-domain.MaxClockSkew) // within the tolerance now
	hs.with(func(d *ingest.Deps) { d.Now = func() time.Time { return clock } })
	if failed := hs.handle(message{"m-2", body}); len(failed) != 0 {
		t.Fatalf("redriven: failed %v", failed)
	}
	if got := hs.jobs(); !reflect.DeepEqual(got, pairs("evt_future", ep)) {
		t.Fatalf("redriven: jobs %v", got)
	}
}

// TestUndeclaredTypesAreDeadLettered: an event of a type the catalog does not declare is
// moved to the DLQ with a reason naming the type and the catalog; a type reserved for the
// service is accepted only with the service's mark.
func TestUndeclaredTypesAreDeadLettered(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	cat, err := eventtypes.Parse([]byte(`{"event_types":[
		{"type":"export.done","source":"platform","description":"d","example":{}},
		{"type":"svc.note","source":"service","description":"d","example":{}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	hs.with(func(d *ingest.Deps) { d.EventTypes = cat })
	ep := hs.endpoint("tenant-a", domain.StatusActive, "*")
	mark := map[string]events.SQSMessageAttribute{queue.AttrProducer: {DataType: "String", StringValue: aws.String(queue.ProducerService)}}
	ev := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m-typo", Body: envelope("tenant-a", "evt_1", "export.dnoe")},
		{MessageId: "m-reserved", Body: envelope("tenant-a", "evt_2", "svc.note")},
		{MessageId: "m-service", Body: envelope("tenant-a", "evt_3", "svc.note"), MessageAttributes: mark},
		{MessageId: "m-ok", Body: envelope("tenant-a", "evt_4", "export.done")},
	}}
	resp, err := hs.h.Handle(context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle: %v, failures %v", err, resp.BatchItemFailures)
	}
	dl := hs.deadLetters()
	if want := `type "export.dnoe" is not declared in the event-type catalog (shared/eventtypes/catalog.json)`; dl["m-typo"] != want {
		t.Errorf("reason of the undeclared type: %q, want %q", dl["m-typo"], want)
	}
	if !strings.Contains(dl["m-reserved"], `"svc.note" is reserved`) {
		t.Errorf("reason of the unmarked service type: %q", dl["m-reserved"])
	}
	if len(dl) != 2 {
		t.Errorf("dead letters %v, want the two refused events only", dl)
	}
	if got := hs.jobs(); !reflect.DeepEqual(got, append(pairs("evt_3", ep), pairs("evt_4", ep)...)) {
		t.Errorf("jobs %v, want evt_3 (marked) and evt_4", got)
	}
	if got := hs.stored("tenant-a"); !reflect.DeepEqual(got, []string{"evt_3", "evt_4"}) {
		t.Errorf("stored %v: a refused event must not be stored", got)
	}
}

// TestNotificationSkipsItsSubject: a notification about an endpoint goes to the tenant's
// other subscribed endpoints, never to the endpoint it is about (not even as a skipped
// record when that one is disabled).
func TestNotificationSkipsItsSubject(t *testing.T) {
	t.Parallel()
	hs := newHarness(t)
	subject := hs.endpoint("tenant-a", domain.StatusActive, "*")
	ops := hs.endpoint("tenant-a", domain.StatusActive, "webhooks.*")
	hs.endpoint("tenant-a", domain.StatusActive, "export.*")
	disabledSubject := hs.endpoint("tenant-a", domain.StatusDisabled, "webhooks.*")
	mark := map[string]events.SQSMessageAttribute{queue.AttrProducer: {DataType: "String", StringValue: aws.String(queue.ProducerService)}}
	body := func(id, about string) string {
		return fmt.Sprintf(`{"id":%q,"tenant_id":"tenant-a","type":%q,"occurred_at":%q,"data":{"endpoint_id":%q,"url":"https://example.com/h","note":%q}}`,
			id, domain.TypeEndpointFailing, t1.Format(time.RFC3339Nano), about, secretMarker)
	}
	resp, err := hs.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m-1", Body: body("evt_n1", subject), MessageAttributes: mark},
		{MessageId: "m-2", Body: body("evt_n2", disabledSubject), MessageAttributes: mark},
	}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle: %v, failures %v", err, resp.BatchItemFailures)
	}
	want := sorted(append(pairs("evt_n1", ops), pairs("evt_n2", subject, ops)...))
	if got := hs.jobs(); !reflect.DeepEqual(got, want) {
		t.Errorf("jobs %v, want %v (never the subject)", got, want)
	}
	log, _, err := hs.deliveries.List(context.Background(), "tenant-a", disabledSubject, "", 10, "")
	if err != nil || len(log) != 1 || log[0].EventID != "evt_n1" {
		t.Errorf("log of the disabled subject: %+v, %v; want only evt_n1 (skipped), nothing about itself", log, err)
	}
}
