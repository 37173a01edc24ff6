package replayworker_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/dev/localsqs"
	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/queue"
	"github.com/datajetty/webhooks/shared/replayworker"
	"github.com/datajetty/webhooks/shared/store"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The adapters the Lambda function wires in satisfy the worker's ports.
var (
	_ replayworker.ReplayStore    = (*store.Replays)(nil)
	_ replayworker.EndpointGetter = (*store.Endpoints)(nil)
	_ replayworker.EventPager     = (*store.Events)(nil)
	_ replayworker.JobSender      = (*queue.DeliveryJobs)(nil)
	_ replayworker.Continuer      = (*queue.ReplayJobs)(nil)
)

// pageSize and batchSize are small so a few events make several pages, sends and
// checkpoints, and jobs are carried from page to page.
const (
	pageSize  = 3
	batchSize = 2
)

const (
	tenant      = "tenant-a"
	otherTenant = "tenant-b"
	// payloadMarker is in every event's data; it must never appear in a log.
	payloadMarker = "payload-marker-7f3a"
)

// fixture is one provisioned stack with real store and queue adapters and an active
// endpoint of tenant subscribed to export.* and import.done.
type fixture struct {
	t          *testing.T
	q          *sqs.Client
	env        map[string]string
	endpoints  *store.Endpoints
	replays    *store.Replays
	events     *store.Events
	deliveries *store.Deliveries
	jobs       *queue.DeliveryJobs
	replayJobs *queue.ReplayJobs
	ep         domain.Endpoint
	now        time.Time // the moment replays are requested (their Until)
	logs       *testenv.Buffer
	// tries records the SendMessageBatch calls of q and how often the SDK sent each.
	tries *batchTries
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	stack := testenv.Stack(t, nil)
	tries := &batchTries{}
	cfg := tries.attach(testenv.AWSConfig(t))
	db, q := dynamodb.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	env := stack.Env
	now := time.Now().UTC()
	f := &fixture{
		tries:      tries,
		t:          t,
		q:          q,
		env:        env,
		endpoints:  store.NewEndpoints(db, env["WEBHOOKS_ENDPOINTS_TABLE"]),
		replays:    store.NewReplays(db, env["WEBHOOKS_REPLAYS_TABLE"], env["WEBHOOKS_ENDPOINTS_TABLE"]),
		events:     store.NewEvents(db, env["WEBHOOKS_EVENTS_TABLE"]),
		deliveries: store.NewDeliveries(db, env["WEBHOOKS_DELIVERIES_TABLE"]),
		jobs:       queue.NewDeliveryJobs(q, env["WEBHOOKS_DELIVERY_QUEUE_URL"]),
		replayJobs: queue.NewReplayJobs(q, env["WEBHOOKS_REPLAY_QUEUE_URL"]),
		now:        now,
		logs:       &testenv.Buffer{},
		ep: domain.Endpoint{
			TenantID:         tenant,
			ID:               domain.NewID(domain.EndpointIDPrefix),
			URL:              "https://example.com/hook",
			Events:           []string{"export.*", "import.done"},
			Status:           domain.StatusActive,
			Version:          1,
			CreatedAt:        now.Add(-24 * time.Hour),
			UpdatedAt:        now.Add(-24 * time.Hour),
			SecretCiphertext: []byte("dummy-ciphertext"),
		},
	}
	if err := f.endpoints.CreateEndpoint(context.Background(), f.ep); err != nil {
		t.Fatal(err)
	}
	return f
}

// deps returns the real adapters.
func (f *fixture) deps() replayworker.Deps {
	return replayworker.Deps{Replays: f.replays, Endpoints: f.endpoints, Events: f.events, Failed: store.NewRecovery(f.deliveries, f.events),
		Jobs: f.jobs, Continuer: f.replayJobs}
}

func (f *fixture) handler(d replayworker.Deps) *replayworker.Handler {
	if d.Options == (replayworker.Options{}) {
		d.Options = replayworker.Options{PageSize: pageSize, BatchSize: batchSize}
	}
	d.Logger = slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := replayworker.New(d)
	if err != nil {
		f.t.Fatal(err)
	}
	return h
}

// seed stores tenant's events before, inside and after [from, until), of subscribed and
// other types, and another tenant's events inside it. It returns what a replay of
// [from, until) to f.ep must enqueue.
func (f *fixture) seed(t *testing.T, from, until time.Time) []domain.Event {
	t.Helper()
	types := []string{"export.done", "import.failed", "import.done", "export.failed"}
	n := 0
	ev := func(tenantID, typ string, at time.Time) domain.Event {
		n++
		return domain.Event{
			ID:         fmt.Sprintf("evt_%03d", n),
			TenantID:   tenantID,
			Type:       typ,
			OccurredAt: at,
			Data:       json.RawMessage(fmt.Sprintf(`{"n":%d,"note":"%s"}`, n, payloadMarker)),
		}
	}
	var inside, outside []domain.Event
	inside = append(inside, ev(tenant, "export.done", from)) // from itself is included
	for i := 1; i <= 15; i++ {
		inside = append(inside, ev(tenant, types[i%len(types)], from.Add(time.Duration(i)*17*time.Minute)))
	}
	inside = append(inside,
		ev(tenant, "export.done", from.Add(2*17*time.Minute)), // the same instant as another
		ev(tenant, "import.done", until.Add(-time.Millisecond)),
	)
	outside = append(outside,
		ev(tenant, "export.done", from.Add(-time.Millisecond)),
		ev(tenant, "export.done", from.Add(-2*time.Hour)),
		ev(tenant, "export.done", until), // until is excluded: live delivery has it
		ev(tenant, "import.done", until.Add(time.Hour)),
		ev(otherTenant, "export.done", from.Add(time.Minute)),
		ev(otherTenant, "import.done", from.Add(time.Hour)),
		ev(otherTenant, "export.done", until.Add(-time.Minute)),
	)
	ctx := context.Background()
	var want []domain.Event
	for _, e := range append(inside, outside...) {
		if _, err := f.events.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range inside {
		if f.ep.Subscribes(e.Type) {
			want = append(want, e)
		}
	}
	if len(want) < 3*pageSize {
		t.Fatalf("seed: only %d matching events; the tests need several pages", len(want))
	}
	return want
}

// start starts a replay of f.ep from from the way POST /replay does, at the given request
// time, and returns it with its job as the worker receives it from the ReplayQueue.
func (f *fixture) start(t *testing.T, from, at time.Time) (domain.Replay, events.SQSMessage) {
	t.Helper()
	return f.startWith(t, app.ReplayInput{From: &from}, at)
}

func (f *fixture) startWith(t *testing.T, in app.ReplayInput, at time.Time) (domain.Replay, events.SQSMessage) {
	t.Helper()
	starter := &app.Replays{Store: f.replays, Queue: f.replayJobs, Endpoints: f.endpoints, Now: func() time.Time { return at }}
	r, err := starter.StartWith(context.Background(), tenant, f.ep.ID, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range f.receive(t, f.env["WEBHOOKS_REPLAY_QUEUE_URL"]) {
		if strings.Contains(m.Body, r.ID) {
			return r, m
		}
	}
	t.Fatalf("the job of replay %s is not on the ReplayQueue", r.ID)
	return r, events.SQSMessage{}
}

// receive drains the visible messages of a queue, as Lambda's event source hands them over
// (with their system and message attributes).
func (f *fixture) receive(t *testing.T, url string) []events.SQSMessage {
	t.Helper()
	var msgs []events.SQSMessage
	for empty := 0; empty < 2; {
		out, err := f.q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl:                    &url,
			MaxNumberOfMessages:         10,
			VisibilityTimeout:           900,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			empty++
			continue
		}
		msgs = append(msgs, localsqs.NewEvent(out.Messages, "", "us-east-1").Records...)
	}
	return msgs
}

// delivered drains the DeliveryQueue.
func (f *fixture) delivered(t *testing.T) []domain.DeliveryJob {
	t.Helper()
	var jobs []domain.DeliveryJob
	for _, m := range f.receive(t, f.env["WEBHOOKS_DELIVERY_QUEUE_URL"]) {
		j, err := queue.ParseDeliveryMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	return jobs
}

// startAnother reports the error of starting another replay of f.ep now: nil once the
// endpoint's lock is free.
func (f *fixture) startAnother() error {
	starter := &app.Replays{Store: f.replays, Queue: f.replayJobs, Now: time.Now}
	_, err := starter.Start(context.Background(), tenant, f.ep.ID, time.Now().Add(-time.Hour))
	return err
}

func (f *fixture) replay(t *testing.T, id string) domain.Replay {
	t.Helper()
	r, err := (&app.Replays{Store: f.replays}).Get(context.Background(), tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sqsEvent(msgs ...events.SQSMessage) events.SQSEvent { return events.SQSEvent{Records: msgs} }

func handle(t *testing.T, ctx context.Context, h *replayworker.Handler, msgs ...events.SQSMessage) []string {
	t.Helper()
	resp, err := h.Handle(ctx, sqsEvent(msgs...))
	if err != nil {
		t.Fatalf("Handle returned an error (it must report failed items instead): %v", err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	return failed
}

// checkJobs checks that every job is a replay job of r for f.ep carrying one of want's
// events unchanged, and returns how many times each event id was delivered.
func checkJobs(t *testing.T, f *fixture, r domain.Replay, jobs []domain.DeliveryJob, want []domain.Event) map[string]int {
	t.Helper()
	byID := map[string]domain.Event{}
	for _, e := range want {
		byID[e.ID] = e
	}
	count := map[string]int{}
	for _, j := range jobs {
		e, ok := byID[j.Event.ID]
		if !ok {
			t.Errorf("unexpected job for event %s (%s at %s, tenant %s)", j.Event.ID, j.Event.Type, j.Event.OccurredAt, j.Event.TenantID)
			continue
		}
		count[e.ID]++
		if j.TenantID != tenant || j.EndpointID != f.ep.ID || j.ReplayID != r.ID {
			t.Errorf("job of %s: tenant %q endpoint %q replay %q, want %q %q %q", e.ID, j.TenantID, j.EndpointID, j.ReplayID, tenant, f.ep.ID, r.ID)
		}
		payload, err := e.Payload()
		if err != nil {
			t.Fatal(err)
		}
		if j.Event.TenantID != e.TenantID || j.Event.Type != e.Type || !j.Event.OccurredAt.Equal(e.OccurredAt) || string(j.Payload) != string(payload) {
			t.Errorf("job of %s carries %+v and payload %s, want the original %+v", e.ID, j.Event, j.Payload, e)
		}
	}
	for _, e := range want {
		if count[e.ID] == 0 {
			t.Errorf("event %s (%s at %s) was not enqueued: a gap", e.ID, e.Type, e.OccurredAt)
		}
	}
	return count
}

// batchTries records, for every SendMessageBatch call of one SQS client, the events it
// carried and how many times the SDK sent it. The SDK's retryer sends a call again when a
// try fails without saying whether SQS took the batch (the connection broke after the
// request went out, a 5xx): SQS may then hold the whole batch twice. That is the
// at-least-once delivery the service promises (docs/events.md; receivers de-duplicate on
// webhook-id, the event id), so a duplicate is a defect only where no retry explains it.
type batchTries struct {
	mu    sync.Mutex
	calls []batchCall
}

type batchCall struct {
	events []string
	tries  int
}

type batchTriesKey struct{}

func (b *batchTries) attach(cfg aws.Config) aws.Config {
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		err := st.Initialize.Add(middleware.InitializeMiddlewareFunc("batchTries", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			batch, ok := in.Parameters.(*sqs.SendMessageBatchInput)
			if !ok {
				return next.HandleInitialize(ctx, in)
			}
			call := &batchCall{}
			for _, e := range batch.Entries {
				call.events = append(call.events, aws.ToString(e.MessageAttributes[queue.JobAttrEventID].StringValue))
			}
			out, md, err := next.HandleInitialize(middleware.WithStackValue(ctx, batchTriesKey{}, call), in)
			b.mu.Lock()
			b.calls = append(b.calls, *call)
			b.mu.Unlock()
			return out, md, err
		}), middleware.After)
		if err != nil {
			return err
		}
		// Inside the retry loop: once per try.
		return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("batchTriesCount", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			if call, ok := middleware.GetStackValue(ctx, batchTriesKey{}).(*batchCall); ok {
				call.tries++
			}
			return next.HandleFinalize(ctx, in)
		}), "Retry", middleware.After)
	})
	return cfg
}

// retried returns how many SendMessageBatch tries beyond the first carried event id.
func (b *batchTries) retried(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.calls {
		if slices.Contains(c.events, id) {
			n += c.tries - 1
		}
	}
	return n
}

// checkOnce reports every event enqueued more often than once plus the SDK's retries of the
// calls carrying it, and returns how many duplicates the retries explain. With no retry,
// that is exactly once.
func (f *fixture) checkOnce(t *testing.T, count map[string]int) int {
	t.Helper()
	dups := 0
	for id, n := range count {
		if n <= 1 {
			continue
		}
		if extra := f.tries.retried(id); n-1 > extra {
			t.Errorf("event %s enqueued %d times, want once (its SendMessageBatch calls were retried %d times)", id, n, extra)
			continue
		}
		t.Logf("event %s enqueued %d times: the SDK retried its SendMessageBatch call", id, n)
		dups += n - 1
	}
	return dups
}

func TestReplayEnqueuesExactlyTheMatchingEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	from := f.now.Add(-5 * time.Hour)
	want := f.seed(t, from, f.now)
	r, msg := f.start(t, from, f.now)
	if !r.Until.Equal(f.now) {
		t.Fatalf("replay until %s, want the request time %s", r.Until, f.now)
	}
	h := f.handler(f.deps())

	if failed := handle(t, context.Background(), h, msg); len(failed) != 0 {
		t.Fatalf("failed items %v", failed)
	}
	jobs := f.delivered(t)
	dups := f.checkOnce(t, checkJobs(t, f, r, jobs, want))
	if len(jobs)-dups != len(want) {
		t.Errorf("%d jobs enqueued (%d of them retried duplicates), want %d", len(jobs), dups, len(want))
	}

	got := f.replay(t, r.ID)
	if got.Status != domain.ReplayCompleted || got.Enqueued != int64(len(want)) || got.Cursor != "" || got.Error != "" {
		t.Errorf("replay = status %s enqueued %d cursor %q error %q, want completed %d", got.Status, got.Enqueued, got.Cursor, got.Error, len(want))
	}
	if err := f.startAnother(); err != nil {
		t.Errorf("the endpoint's replay lock was not released: %v", err)
	}

	// SQS delivers at least once: the same job again changes nothing.
	if failed := handle(t, context.Background(), h, msg); len(failed) != 0 {
		t.Fatalf("redelivered job: failed items %v", failed)
	}
	if again := f.delivered(t); len(again) != 0 {
		t.Errorf("a redelivered job of a completed replay enqueued %d jobs", len(again))
	}

	logs := f.logs.String()
	if strings.Contains(logs, payloadMarker) {
		t.Errorf("event data reached the logs:\n%s", logs)
	}
	for _, s := range []string{`"replay_id":"` + r.ID, `"tenant_id":"` + tenant, `"endpoint_id":"` + f.ep.ID, `"msg":"replay completed"`, fmt.Sprintf(`"enqueued":%d`, len(want))} {
		if !strings.Contains(logs, s) {
			t.Errorf("logs lack %s:\n%s", s, logs)
		}
	}
}

// pageRecorder remembers the pages the worker read.
type pageRecorder struct {
	replayworker.EventPager
	mu    sync.Mutex
	pages []recordedPage
}

type recordedPage struct {
	cursor, next string
	ids          []string
}

func (p *pageRecorder) Page(ctx context.Context, tenantID string, from, until time.Time, cursor string, limit int) ([]domain.Event, string, error) {
	evs, next, err := p.EventPager.Page(ctx, tenantID, from, until, cursor, limit)
	if err == nil {
		pg := recordedPage{cursor: cursor, next: next}
		for _, e := range evs {
			pg.ids = append(pg.ids, e.ID)
		}
		p.mu.Lock()
		p.pages = append(p.pages, pg)
		p.mu.Unlock()
	}
	return evs, next, err
}

func (p *pageRecorder) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pages)
}

// sendRecorder remembers the event ids of every Send. On its failAt-th Send (counting
// from 1; 0: never) it sends only the first job and reports the rest failed, as a
// SendMessageBatch whose retries ran out would.
type sendRecorder struct {
	replayworker.JobSender
	failAt int

	mu    sync.Mutex
	sends [][]string
}

func (s *sendRecorder) Send(ctx context.Context, jobs []domain.DeliveryJob) ([]domain.DeliveryJob, error) {
	s.mu.Lock()
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.Event.ID)
	}
	s.sends = append(s.sends, ids)
	n := len(s.sends)
	s.mu.Unlock()
	if n != s.failAt {
		return s.JobSender.Send(ctx, jobs)
	}
	if _, err := s.JobSender.Send(ctx, jobs[:1]); err != nil {
		return nil, err
	}
	return jobs[1:], nil
}

func (s *sendRecorder) last() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sends[len(s.sends)-1]
}

// crashingStore fails the crashAt-th checkpoint after the one that marks the replay
// running: the sent jobs are on the queue but the cursor is not saved, as when the
// function dies between the two.
type crashingStore struct {
	replayworker.ReplayStore
	crashAt int

	mu    sync.Mutex
	calls int
}

func (s *crashingStore) UpdateProgress(ctx context.Context, r domain.Replay, leaseUntil, now time.Time) error {
	s.mu.Lock()
	s.calls++
	crash := s.calls == s.crashAt+1
	s.mu.Unlock()
	if crash {
		return errors.New("simulated crash before the checkpoint")
	}
	return s.ReplayStore.UpdateProgress(ctx, r, leaseUntil, now)
}

// rest walks the events from r's saved cursor to the end of its range and returns the ids
// of those f.ep subscribes to: what a resumed run will send.
func (f *fixture) rest(t *testing.T, r domain.Replay) []string {
	t.Helper()
	var out []string
	cursor := r.Cursor
	for {
		evs, next, err := f.events.Page(context.Background(), tenant, r.From, r.Until, cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if f.ep.Subscribes(e.Type) {
				out = append(out, e.ID)
			}
		}
		if next == "" {
			return out
		}
		cursor = next
	}
}

// TestReplayResumesWithoutGaps interrupts a replay at its third send and re-runs the same
// job: every matching event is enqueued, the checkpoint covers exactly the jobs on the
// queue, and only the interrupted send's jobs may be enqueued twice.
func TestReplayResumesWithoutGaps(t *testing.T) {
	t.Parallel()
	const failAt = 3
	for _, tc := range []struct {
		name string
		// wrap installs the failure on the first run's adapters.
		wrap func(d *replayworker.Deps, sends *sendRecorder)
	}{
		{"send fails", func(d *replayworker.Deps, sends *sendRecorder) { sends.failAt = failAt }},
		{"crash between send and checkpoint", func(d *replayworker.Deps, sends *sendRecorder) {
			d.Replays = &crashingStore{ReplayStore: d.Replays, crashAt: failAt}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newFixture(t)
			from := f.now.Add(-5 * time.Hour)
			want := f.seed(t, from, f.now)
			r, msg := f.start(t, from, f.now)

			d := f.deps()
			sends := &sendRecorder{JobSender: d.Jobs}
			d.Jobs = sends
			tc.wrap(&d, sends)
			if failed := handle(t, ctx, f.handler(d), msg); !slices.Equal(failed, []string{msg.MessageId}) {
				t.Fatalf("failed items %v, want the job %s reported failed", failed, msg.MessageId)
			}
			if len(sends.sends) != failAt {
				t.Fatalf("the worker made %d sends, want it to stop at send %d", len(sends.sends), failAt)
			}
			first := f.delivered(t)
			got := f.replay(t, r.ID)
			if got.Status != domain.ReplayRunning || got.Cursor == "" {
				t.Errorf("after the failure: status %s cursor %q, want running with a checkpoint", got.Status, got.Cursor)
			}
			// The checkpoint is exact: the events before its cursor are the ones it counts
			// as enqueued, and they are all on the queue.
			inOrder := slices.Clone(want)
			slices.SortFunc(inOrder, func(a, b domain.Event) int {
				return cmp.Or(a.OccurredAt.Compare(b.OccurredAt), strings.Compare(a.ID, b.ID))
			})
			var wantIDs []string
			for _, e := range inOrder {
				wantIDs = append(wantIDs, e.ID)
			}
			if rest := f.rest(t, got); !slices.Equal(rest, wantIDs[got.Enqueued:]) {
				t.Errorf("after the failure: enqueued %d and the cursor resumes at %v, want %v", got.Enqueued, rest, wantIDs[got.Enqueued:])
			}
			checkpointed := 0
			for _, ids := range sends.sends[:failAt-1] {
				if len(ids)%batchSize != 0 {
					t.Errorf("a send before the last page had %d jobs, not whole batches of %d", len(ids), batchSize)
				}
				checkpointed += len(ids)
			}
			if int(got.Enqueued) != checkpointed {
				t.Errorf("after the failure: enqueued %d, want the %d jobs of the checkpointed sends", got.Enqueued, checkpointed)
			}
			if err := f.startAnother(); !errors.Is(err, domain.ErrConflict) {
				t.Errorf("another replay could start while this one is unfinished: %v", err)
			}

			// SQS redelivers the job; the worker resumes from the checkpoint.
			interrupted := sends.last()
			msg.Attributes["ApproximateReceiveCount"] = "2"
			if failed := handle(t, ctx, f.handler(f.deps()), msg); len(failed) != 0 {
				t.Fatalf("resumed run: failed items %v", failed)
			}
			second := f.delivered(t)
			count := checkJobs(t, f, r, append(first, second...), want)
			dups := 0
			for id, n := range count {
				if n > 1 {
					dups += n - 1
					allowed := f.tries.retried(id) // the SDK's own retries (batchTries)
					if slices.Contains(interrupted, id) {
						allowed++
					}
					if n-1 > allowed {
						t.Errorf("event %s enqueued %d times; only the interrupted send %v may be sent twice", id, n, interrupted)
					}
				}
			}
			t.Logf("%d jobs before the failure, %d after, %d duplicates", len(first), len(second), dups)

			got = f.replay(t, r.ID)
			if got.Status != domain.ReplayCompleted || got.Enqueued != int64(len(want)) {
				t.Errorf("replay = status %s enqueued %d, want completed %d", got.Status, got.Enqueued, len(want))
			}
			if err := f.startAnother(); err != nil {
				t.Errorf("the endpoint's replay lock was not released: %v", err)
			}
		})
	}
}

// batchMeter sees every SendMessageBatch call of one SQS client: how many entries each had,
// grouped by the Send that made it, and whether the batches of one Send went out in one
// wave. Each call waits until every batch of its Send is in flight; a sender that holds
// some back (8 at a time, say) makes the waiting calls give up after a while, which counts
// the Send as split.
type batchMeter struct {
	mu      sync.Mutex
	sends   [][]int       // entries of each call, per Send
	want    int           // batches of the current Send
	arrived int           // its calls so far
	all     chan struct{} // closed when want calls are in flight
	split   int           // Sends whose batches did not all go out together
}

// expect announces a Send of n batches.
func (m *batchMeter) expect(n int) {
	m.mu.Lock()
	m.sends = append(m.sends, nil)
	m.want, m.arrived, m.all = n, 0, make(chan struct{})
	m.mu.Unlock()
}

func (m *batchMeter) attach(cfg aws.Config) aws.Config {
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("batchMeter", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if b, ok := in.Parameters.(*sqs.SendMessageBatchInput); ok {
				m.mu.Lock()
				m.sends[len(m.sends)-1] = append(m.sends[len(m.sends)-1], len(b.Entries))
				m.arrived++
				all := m.all
				if m.arrived == m.want {
					close(all)
				}
				m.mu.Unlock()
				select {
				case <-all:
				case <-time.After(3 * time.Second):
					m.mu.Lock()
					m.split++
					m.mu.Unlock()
				}
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
	})
	return cfg
}

// wavedSender announces each Send's batches to the meter.
type wavedSender struct {
	replayworker.JobSender
	meter *batchMeter
}

func (s wavedSender) Send(ctx context.Context, jobs []domain.DeliveryJob) ([]domain.DeliveryJob, error) {
	s.meter.expect((len(jobs) + replayworker.DefaultBatchSize - 1) / replayworker.DefaultBatchSize)
	return s.JobSender.Send(ctx, jobs)
}

// TestReplaySendsFullBatchesInOneWave replays one range to endpoints subscribed to every
// event, to one in three and to about one in fifteen, with the production page and batch
// sizes: every SendMessageBatch call but the replay's last is full (a page's leftovers wait
// for the next page), and the batches of each send, ten for a page of matching events, are
// in flight together.
func TestReplaySendsFullBatchesInOneWave(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	from := f.now.Add(-3 * time.Hour)
	const n = 300
	var types []string
	for i := range n {
		typ := "import.failed"
		switch {
		case i%3 == 0:
			typ = "import.done"
		case i%10 == 1:
			typ = "export.done"
		}
		types = append(types, typ)
		e := domain.Event{ID: fmt.Sprintf("evt_%04d", i), TenantID: tenant, Type: typ,
			OccurredAt: from.Add(time.Duration(i) * 3 * time.Hour / n), Data: json.RawMessage(`{}`)}
		if _, err := f.events.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	meter := &batchMeter{}
	jobs := wavedSender{JobSender: queue.NewDeliveryJobs(sqs.NewFromConfig(meter.attach(testenv.AWSConfig(t))), f.env["WEBHOOKS_DELIVERY_QUEUE_URL"]), meter: meter}
	for _, pattern := range []string{"*", "import.done", "export.done"} {
		t.Run(pattern, func(t *testing.T) {
			ep := f.ep
			ep.ID, ep.Events, ep.URL = domain.NewID(domain.EndpointIDPrefix), []string{pattern}, "https://example.com/"+pattern
			if err := f.endpoints.CreateEndpoint(ctx, ep); err != nil {
				t.Fatal(err)
			}
			r, err := (&app.Replays{Store: f.replays, Queue: f.replayJobs, Now: func() time.Time { return f.now }}).Start(ctx, tenant, ep.ID, from)
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, typ := range types {
				if ep.Subscribes(typ) {
					want++
				}
			}
			meter.sends = nil
			d := f.deps()
			d.Jobs = jobs
			d.Options = replayworker.Options{PageSize: replayworker.DefaultPageSize}
			job := events.SQSMessage{MessageId: "m-" + r.ID, Body: `{"tenant_id":"` + tenant + `","replay_id":"` + r.ID + `"}`,
				Attributes: map[string]string{"ApproximateReceiveCount": "1"}}
			if failed := handle(t, ctx, f.handler(d), job); len(failed) != 0 {
				t.Fatalf("failed items %v", failed)
			}
			if got := f.replay(t, r.ID); got.Status != domain.ReplayCompleted || got.Enqueued != int64(want) {
				t.Fatalf("replay = %s, %d enqueued; want completed, %d", got.Status, got.Enqueued, want)
			}
			total := 0
			for i, calls := range meter.sends {
				short := 0
				for _, c := range calls {
					total += c
					if c != replayworker.DefaultBatchSize {
						short++
					}
				}
				if short > 0 && (i != len(meter.sends)-1 || short > 1) {
					t.Errorf("send %d of %d made SendMessageBatch calls of %v entries: only the replay's last call may be short", i+1, len(meter.sends), calls)
				}
			}
			if total != want {
				t.Errorf("%d jobs in SendMessageBatch calls, want %d", total, want)
			}
			t.Logf("%s: %d jobs, SendMessageBatch calls per send %v", pattern, want, meter.sends)
		})
	}
	if meter.split != 0 {
		t.Errorf("%d SendMessageBatch calls waited for the rest of their send: a page's batches went out in more than one wave", meter.split)
	}
}

// TestReplayContinuesBeforeDeadline runs a replay in an invocation whose deadline is
// already within the margin: it enqueues one page, checkpoints, and hands the rest on to a
// new ReplayQueue message.
func TestReplayContinuesBeforeDeadline(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	from := f.now.Add(-5 * time.Hour)
	want := f.seed(t, from, f.now)
	r, msg := f.start(t, from, f.now)
	pages := &pageRecorder{EventPager: f.events}
	d := f.deps()
	d.Events = pages
	h := f.handler(d)

	ctx, cancel := context.WithTimeout(context.Background(), replayworker.DefaultDeadlineMargin-10*time.Second)
	defer cancel()
	if failed := handle(t, ctx, h, msg); len(failed) != 0 {
		t.Fatalf("failed items %v, want the job acknowledged", failed)
	}
	if pages.count() != 1 {
		t.Fatalf("the worker read %d pages, want 1 before handing on", pages.count())
	}
	first := f.delivered(t)
	got := f.replay(t, r.ID)
	if got.Status != domain.ReplayRunning || got.Cursor != pages.pages[0].next || got.Enqueued != int64(len(first)) {
		t.Errorf("after one page: status %s cursor %q enqueued %d, want running %q %d", got.Status, got.Cursor, got.Enqueued, pages.pages[0].next, len(first))
	}
	cont := f.receive(t, f.env["WEBHOOKS_REPLAY_QUEUE_URL"])
	if len(cont) != 1 {
		t.Fatalf("%d messages on the ReplayQueue, want one continuation", len(cont))
	}
	if job, err := queue.ParseReplayJob(cont[0].Body); err != nil || job.ReplayID != r.ID || job.TenantID != tenant {
		t.Fatalf("continuation = %+v, %v; want replay %s", job, err, r.ID)
	}

	if failed := handle(t, context.Background(), h, cont[0]); len(failed) != 0 {
		t.Fatalf("continuation: failed items %v", failed)
	}
	rest := f.delivered(t)
	f.checkOnce(t, checkJobs(t, f, r, append(first, rest...), want))
	// The continuation resumes after the checkpoint: none of the first invocation's events
	// again, whatever the SDK retried.
	for _, j := range rest {
		if slices.ContainsFunc(first, func(k domain.DeliveryJob) bool { return k.Event.ID == j.Event.ID }) {
			t.Errorf("the continuation enqueued %s again: the first invocation had enqueued it", j.Event.ID)
		}
	}
	if got := f.replay(t, r.ID); got.Status != domain.ReplayCompleted || got.Enqueued != int64(len(want)) {
		t.Errorf("replay = status %s enqueued %d, want completed %d", got.Status, got.Enqueued, len(want))
	}
	if !strings.Contains(f.logs.String(), "replay continues in a new invocation") {
		t.Errorf("no log line for the hand-off:\n%s", f.logs)
	}
}

// TestReplayIsAtLeastOnceWhenTheSDKRetriesASend: when a SendMessageBatch call's response is
// lost after SQS took the batch, the SDK's retryer sends the whole call again and the
// DeliveryQueue holds its jobs twice. The replay still completes and counts each event
// once; every event is enqueued at least once, and the duplicates are exactly the retried
// call's jobs, carrying the original event and so the same webhook-id (receivers
// de-duplicate on it). This is why the other tests accept a duplicate only where the SDK
// retried (checkOnce), as happens against an emulator slowed by a loaded machine.
func TestReplayIsAtLeastOnceWhenTheSDKRetriesASend(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	from := f.now.Add(-5 * time.Hour)
	want := f.seed(t, from, f.now)
	r, msg := f.start(t, from, f.now)

	cfg := f.tries.attach(testenv.AWSConfig(t))
	flaky := &testenv.LoseFirstResponse{Operation: ".SendMessageBatch"}
	cfg.HTTPClient = flaky
	d := f.deps()
	d.Jobs = queue.NewDeliveryJobs(sqs.NewFromConfig(cfg), f.env["WEBHOOKS_DELIVERY_QUEUE_URL"])
	if failed := handle(t, context.Background(), f.handler(d), msg); len(failed) != 0 {
		t.Fatalf("failed items %v, want the job acknowledged", failed)
	}
	if flaky.Calls() == 0 {
		t.Fatal("no SendMessageBatch call went through the resetting client")
	}
	if got := f.replay(t, r.ID); got.Status != domain.ReplayCompleted || got.Enqueued != int64(len(want)) {
		t.Errorf("replay = status %s enqueued %d, want completed %d", got.Status, got.Enqueued, len(want))
	}

	jobs := f.delivered(t)
	count := checkJobs(t, f, r, jobs, want)
	f.tries.mu.Lock()
	retried := slices.IndexFunc(f.tries.calls, func(c batchCall) bool { return c.tries > 1 })
	var again []string
	if retried >= 0 {
		again = f.tries.calls[retried].events
	}
	f.tries.mu.Unlock()
	if len(again) == 0 {
		t.Fatal("the SDK did not retry the SendMessageBatch call whose response was lost")
	}
	for id, n := range count {
		if wantN := 1 + boolInt(slices.Contains(again, id)); n != wantN {
			t.Errorf("event %s enqueued %d times, want %d (the retried call carried %v)", id, n, wantN, again)
		}
	}
	if dups := f.checkOnce(t, count); dups != len(again) || len(jobs) != len(want)+len(again) {
		t.Errorf("%d jobs enqueued with %d duplicates, want %d and the %d of the retried call", len(jobs), dups, len(want)+len(again), len(again))
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestReplayOfDisabledEndpointFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	from := f.now.Add(-5 * time.Hour)
	f.seed(t, from, f.now)
	r, msg := f.start(t, from, f.now)

	disabled := f.ep
	disabled.Status, disabled.DisabledReason, disabled.DisabledDetail, disabled.Version = domain.StatusDisabled, domain.DisabledGone, "410 Gone", 2
	if err := f.endpoints.UpdateEndpoint(ctx, disabled, 1, ""); err != nil {
		t.Fatal(err)
	}
	if failed := handle(t, ctx, f.handler(f.deps()), msg); len(failed) != 0 {
		t.Fatalf("failed items %v, want the job acknowledged", failed)
	}
	if jobs := f.delivered(t); len(jobs) != 0 {
		t.Errorf("%d jobs enqueued for a disabled endpoint", len(jobs))
	}
	got := f.replay(t, r.ID)
	if got.Status != domain.ReplayFailed || !strings.Contains(got.Error, "disabled") || got.Enqueued != 0 {
		t.Errorf("replay = status %s error %q enqueued %d, want failed because the endpoint is disabled", got.Status, got.Error, got.Enqueued)
	}
	// Re-enabled, the endpoint can be replayed again: the failed replay released its lock.
	disabled.Status, disabled.DisabledReason, disabled.DisabledDetail, disabled.Version = domain.StatusActive, "", "", 3
	if err := f.endpoints.UpdateEndpoint(ctx, disabled, 2, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.startAnother(); err != nil {
		t.Errorf("the endpoint's replay lock was not released: %v", err)
	}
}

// TestReplayOnlyFailed: with only_failed a replay reads the endpoint's unsucceeded index,
// not every event of the range: it enqueues exactly the matching events in range whose
// latest delivery did not succeed, over several pages and checkpoints.
func TestReplayOnlyFailed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	from := f.now.Add(-5 * time.Hour)
	inRange := f.seed(t, from, f.now)
	// Attempts of the endpoint: every third matching event failed, every fifth was
	// skipped while paused; one failed and then succeeded on a retry; the rest succeeded.
	var attempts []domain.Attempt
	var want []domain.Event
	for i, e := range inRange {
		a := domain.Attempt{TenantID: tenant, EndpointID: f.ep.ID, EventID: e.ID, EventType: e.Type, OccurredAt: e.OccurredAt,
			Number: 1, Status: domain.DeliverySucceeded, AttemptedAt: f.now.Add(-time.Minute)}
		switch {
		case i%3 == 0:
			a.Status, a.ErrorClass = domain.DeliveryDead, "http_5xx"
			want = append(want, e)
		case i%5 == 0:
			a.Status, a.ErrorClass = domain.DeliverySkipped, domain.SkippedDisabled
			want = append(want, e)
		case i == 1:
			failed := a
			failed.Status = domain.DeliveryPending
			attempts = append(attempts, failed)
			a.Number, a.AttemptedAt = 2, a.AttemptedAt.Add(time.Second)
		}
		attempts = append(attempts, a)
	}
	// A failure outside the range is not replayed.
	early := domain.Attempt{TenantID: tenant, EndpointID: f.ep.ID, EventID: "evt_early", EventType: "export.done",
		OccurredAt: from.Add(-time.Minute), Number: 1, Status: domain.DeliveryDead, AttemptedAt: f.now}
	if err := f.deliveries.Record(ctx, append(attempts, early)); err != nil {
		t.Fatal(err)
	}
	if len(want) < 2*pageSize {
		t.Fatalf("seed: only %d failed events; the test needs several pages", len(want))
	}
	r, msg := f.startWith(t, app.ReplayInput{From: &from, OnlyFailed: true}, f.now)
	if !r.OnlyFailed {
		t.Fatalf("replay %+v does not say only_failed", r)
	}
	if failed := handle(t, ctx, f.handler(f.deps()), msg); len(failed) != 0 {
		t.Fatalf("failed items %v", failed)
	}
	jobs := f.delivered(t)
	dups := f.checkOnce(t, checkJobs(t, f, r, jobs, want))
	if len(jobs)-dups != len(want) {
		t.Errorf("%d jobs enqueued (%d of them retried duplicates), want the %d failed ones", len(jobs), dups, len(want))
	}
	if got := f.replay(t, r.ID); got.Status != domain.ReplayCompleted || got.Enqueued != int64(len(want)) || !got.OnlyFailed {
		t.Errorf("replay = %+v", got)
	}
}

// TestReplayFromTheWatermark: without from, a replay starts right after the endpoint's
// watermark (so exactly what came after the newest success); with no watermark it needs a
// from.
func TestReplayFromTheWatermark(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	starter := &app.Replays{Store: f.replays, Queue: f.replayJobs, Endpoints: f.endpoints, Now: func() time.Time { return f.now }}
	_, err := starter.StartWith(ctx, tenant, f.ep.ID, app.ReplayInput{})
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Field != "from" {
		t.Fatalf("no from, no watermark: %v, want 400 on from", err)
	}
	from := f.now.Add(-5 * time.Hour)
	inRange := f.seed(t, from, f.now)
	mark := inRange[len(inRange)/2]
	if _, err := f.endpoints.AdvanceWatermark(ctx, tenant, f.ep.ID, mark.OccurredAt); err != nil {
		t.Fatal(err)
	}
	var want []domain.Event
	for _, e := range inRange {
		if e.OccurredAt.After(mark.OccurredAt) {
			want = append(want, e)
		}
	}
	r, msg := f.startWith(t, app.ReplayInput{}, f.now)
	if !r.From.Equal(mark.OccurredAt.Add(time.Nanosecond)) {
		t.Fatalf("from %s, want right after the watermark %s", r.From, mark.OccurredAt)
	}
	if failed := handle(t, ctx, f.handler(f.deps()), msg); len(failed) != 0 {
		t.Fatalf("failed items %v", failed)
	}
	jobs := f.delivered(t)
	checkJobs(t, f, r, jobs, want)
	if len(jobs) != len(want) {
		t.Errorf("%d jobs, want exactly the %d events after the watermark", len(jobs), len(want))
	}
}

// TestReplayStopsWhenItsEndpointIsDeleted: deleting the endpoint while its replay runs
// stops the replay at its next checkpoint, marked failed with the reason; what was sent
// before (one page at most) is skipped by the deliver function.
func TestReplayStopsWhenItsEndpointIsDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	from := f.now.Add(-5 * time.Hour)
	want := f.seed(t, from, f.now)
	r, msg := f.start(t, from, f.now)
	d := f.deps()
	d.Jobs = &deleteAfterFirstSend{JobSender: f.jobs, del: func() error { return f.endpoints.DeleteEndpoint(ctx, f.ep, f.ep.Version) }}
	if failed := handle(t, ctx, f.handler(d), msg); len(failed) != 0 {
		t.Fatalf("failed items %v, want the job acknowledged", failed)
	}
	jobs := f.delivered(t)
	if len(jobs) == 0 || len(jobs) > pageSize || len(jobs) >= len(want) {
		t.Fatalf("%d jobs enqueued, want the first page's only (at most %d)", len(jobs), pageSize)
	}
	got := f.replay(t, r.ID)
	if got.Status != domain.ReplayFailed || got.Error != "the endpoint was deleted" {
		t.Fatalf("replay = status %s error %q, want failed because the endpoint was deleted", got.Status, got.Error)
	}
}

// deleteAfterFirstSend sends jobs, deleting the endpoint right after the first send.
type deleteAfterFirstSend struct {
	replayworker.JobSender
	del  func() error
	once sync.Once
}

func (d *deleteAfterFirstSend) Send(ctx context.Context, jobs []domain.DeliveryJob) ([]domain.DeliveryJob, error) {
	failed, err := d.JobSender.Send(ctx, jobs)
	var derr error
	d.once.Do(func() { derr = d.del() })
	if derr != nil {
		return failed, derr
	}
	return failed, err
}

// TestReplayThatLostItsLockStops: a replay whose lease expired and whose lock another
// replay took must not send anything.
func TestReplayThatLostItsLockStops(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	stale := f.now.Add(-domain.ReplayLease - 10*time.Minute)
	from := stale.Add(-4 * time.Hour)
	f.seed(t, from, stale)
	r, msg := f.start(t, from, stale) // leased until 10 minutes ago
	if err := f.startAnother(); err != nil {
		t.Fatalf("a replay after the lease expired: %v", err)
	}

	if failed := handle(t, context.Background(), f.handler(f.deps()), msg); len(failed) != 0 {
		t.Fatalf("failed items %v, want the job acknowledged", failed)
	}
	if jobs := f.delivered(t); len(jobs) != 0 {
		t.Errorf("a replay without the lock enqueued %d jobs", len(jobs))
	}
	if got := f.replay(t, r.ID); got.Status != domain.ReplayFailed || got.Error == "" {
		t.Errorf("replay = status %s error %q, want failed with a reason", got.Status, got.Error)
	}
	var de *domain.Error
	if err := f.startAnother(); !errors.As(err, &de) || de.Reason != domain.ReasonReplayInProgress {
		t.Errorf("the other replay's lock was released: %v", err)
	}
}

// TestReplayGivesUpOnLastReceive: a job that keeps failing is retried by SQS; on its last
// receive the replay is marked failed (and its lock released) before the DLQ takes it.
func TestReplayGivesUpOnLastReceive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	from := f.now.Add(-5 * time.Hour)
	f.seed(t, from, f.now)
	r, msg := f.start(t, from, f.now)
	d := f.deps()
	d.Jobs = rejectAll{}
	h := f.handler(d)

	if failed := handle(t, ctx, h, msg); len(failed) != 1 {
		t.Fatalf("failed items %v, want the job", failed)
	}
	if got := f.replay(t, r.ID); got.Status != domain.ReplayRunning {
		t.Errorf("after a failed attempt: status %s, want running (SQS retries)", got.Status)
	}
	msg.Attributes["ApproximateReceiveCount"] = fmt.Sprint(replayworker.DefaultMaxReceives)
	if failed := handle(t, ctx, h, msg); len(failed) != 1 {
		t.Fatalf("last receive: failed items %v, want the job (for the DLQ)", failed)
	}
	if got := f.replay(t, r.ID); got.Status != domain.ReplayFailed || !strings.Contains(got.Error, "gave up") {
		t.Errorf("after the last attempt: status %s error %q, want failed", got.Status, got.Error)
	}
	if err := f.startAnother(); err != nil {
		t.Errorf("the endpoint's replay lock was not released: %v", err)
	}
}

// rejectAll is a JobSender whose every job fails.
type rejectAll struct{}

func (rejectAll) Send(_ context.Context, jobs []domain.DeliveryJob) ([]domain.DeliveryJob, error) {
	return jobs, nil
}

func TestReplayJobsThatCannotRun(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	h := f.handler(f.deps())
	unknown := events.SQSMessage{MessageId: "m-unknown", Body: `{"tenant_id":"tenant-a","replay_id":"` + domain.NewID(domain.ReplayIDPrefix) + `"}`}
	malformed := events.SQSMessage{MessageId: "m-malformed", Body: `{"tenant_id":"tenant-a"}`}
	// The unknown replay is acknowledged; the malformed job is failed so SQS redrive
	// dead-letters it instead of it vanishing.
	if failed := handle(t, context.Background(), h, unknown, malformed); !slices.Equal(failed, []string{"m-malformed"}) {
		t.Errorf("failed items %v, want [m-malformed]", failed)
	}
}

// TestSampleEvent feeds events/replay-worker.json, as raw JSON, through the runtime's own
// decoding to the handler: it names a replay that does not exist, so it is acknowledged.
func TestSampleEvent(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "events", "replay-worker.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	if err := json.Unmarshal(raw, &ev); err != nil || len(ev.Records) != 1 {
		t.Fatalf("fixture: %d records, %v", len(ev.Records), err)
	}
	if _, err := queue.ParseReplayJob(ev.Records[0].Body); err != nil {
		t.Errorf("fixture body: %v", err)
	}
	if ev.Records[0].Attributes["ApproximateReceiveCount"] == "" {
		t.Error("fixture lacks the ApproximateReceiveCount attribute")
	}
	f := newFixture(t)
	out, err := lambda.NewHandler(f.handler(f.deps()).Handle).Invoke(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Errorf("response %s (%v), want no failed items", out, err)
	}
}
