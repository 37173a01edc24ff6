package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/datajetty/webhooks/shared/dev/localsqs"
	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/kmssecrets"
	"github.com/datajetty/webhooks/shared/metrics"
	"github.com/datajetty/webhooks/shared/queue"
	"github.com/datajetty/webhooks/shared/signing"
	"github.com/datajetty/webhooks/shared/ssrf"
	"github.com/datajetty/webhooks/shared/store"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const tenant = "tenant-a"

// ---------------------------------------------------------------- test doubles

// lines returns the JSON log records whose msg is msg.
func logLines(l *testenv.Buffer, t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// recordingVisibility remembers every visibility change, by receipt handle.
type recordingVisibility struct {
	mu     sync.Mutex
	delays map[string][]time.Duration
}

func (v *recordingVisibility) ChangeVisibility(_ context.Context, receiptHandle string, delay time.Duration) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.delays == nil {
		v.delays = map[string][]time.Duration{}
	}
	v.delays[receiptHandle] = append(v.delays[receiptHandle], delay)
	return nil
}

func (v *recordingVisibility) of(receiptHandle string) []time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.delays[receiptHandle])
}

type countingSource struct {
	EndpointSource
	n atomic.Int32
}

func (c *countingSource) GetEndpoint(ctx context.Context, tenantID, endpointID string) (domain.Endpoint, error) {
	c.n.Add(1)
	return c.EndpointSource.GetEndpoint(ctx, tenantID, endpointID)
}

type countingOpener struct {
	SecretOpener
	n atomic.Int32
}

func (c *countingOpener) Open(ctx context.Context, tenantID, endpointID string, ct []byte) (signing.Secret, error) {
	c.n.Add(1)
	return c.SecretOpener.Open(ctx, tenantID, endpointID, ct)
}

type failingLog struct{}

func (failingLog) Record(context.Context, []domain.Attempt) error {
	return domain.Unavailable("database", errors.New("throttled"))
}

// clock is real time plus an adjustable offset, so the official verifier's timestamp
// tolerance holds while a test can still jump past the cache TTL.
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

// ---------------------------------------------------------------- receivers

type request struct {
	path   string
	header http.Header
	body   []byte
}

// receiver is a real HTTP endpoint on loopback. respond gets the 1-based request number.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, request{path: r.URL.Path, header: r.Header.Clone(), body: body})
		n := len(rc.reqs)
		rc.mu.Unlock()
		if respond == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		respond(n, w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.reqs)
}

// ---------------------------------------------------------------- fixture

type fixture struct {
	ctx        context.Context
	endpoints  *store.Endpoints
	deliveries *store.Deliveries
	box        *kmssecrets.Box
	source     *countingSource
	opener     *countingOpener
	vis        *recordingVisibility
	logs       *testenv.Buffer
	clock      *clock
	stackEnv   map[string]string
	stackRes   map[string]string
	h          *Handler
	metrics    *metrics.Emitter
}

// newFixture provisions the template in the emulator and builds a Handler on the real
// stores and KMS, a loopback-friendly SSRF client (unless policy says otherwise), a
// recording Visibility and no jitter. mutate adjusts the dependencies before New.
func newFixture(t *testing.T, policy ssrf.Policy, mutate func(*Deps)) *fixture {
	t.Helper()
	stack := testenv.Stack(t, nil)
	cfg := testenv.AWSConfig(t)
	ddb := dynamodb.NewFromConfig(cfg)
	f := &fixture{
		ctx:        context.Background(),
		endpoints:  store.NewEndpoints(ddb, stack.Env["WEBHOOKS_ENDPOINTS_TABLE"]),
		deliveries: store.NewDeliveries(ddb, stack.Env["WEBHOOKS_DELIVERIES_TABLE"]),
		box:        kmssecrets.New(kms.NewFromConfig(cfg), stack.Env["WEBHOOKS_SECRETS_KEY_ID"]),
		vis:        &recordingVisibility{},
		logs:       &testenv.Buffer{},
		clock:      &clock{},
		stackEnv:   stack.Env,
		stackRes:   stack.Resources,
	}
	f.source = &countingSource{EndpointSource: f.endpoints}
	f.opener = &countingOpener{SecretOpener: f.box}
	opts := DefaultOptions()
	opts.UserAgent = "DataJetty-Webhooks-Test/1.0"
	d := Deps{
		Endpoints:  f.source,
		Secrets:    f.opener,
		Log:        f.deliveries,
		State:      f.endpoints,
		Visibility: f.vis,
		Client:     ssrf.NewClient(policy, 15*time.Second),
		Now:        f.clock.Now,
		Rand:       func() float64 { return 0.5 }, // no jitter: delays are exactly the schedule
		Logger:     slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Options:    opts,
	}
	if mutate != nil {
		mutate(&d)
	}
	h, err := New(d)
	if err != nil {
		t.Fatal(err)
	}
	f.h, f.metrics = h, d.Metrics
	return f
}

var allowLoopback = ssrf.Policy{AllowPrivate: true}

// endpoint registers an active endpoint for url signed by secrets[0] and, when given,
// secrets[1] as the previous secret until prevUntil.
func (f *fixture) endpoint(t *testing.T, url string, prevUntil time.Time, secrets ...signing.Secret) domain.Endpoint {
	t.Helper()
	now := f.clock.Now()
	ep := domain.Endpoint{
		TenantID: tenant, ID: domain.NewID(domain.EndpointIDPrefix), URL: url, Events: []string{"*"},
		Status: domain.StatusActive, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	for i, s := range secrets {
		ct, err := f.box.Seal(f.ctx, tenant, ep.ID, s)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			ep.SecretCiphertext = ct
		} else {
			ep.PreviousSecretCiphertext, ep.PreviousSecretExpiresAt = ct, prevUntil
		}
	}
	if err := f.endpoints.CreateEndpoint(f.ctx, ep); err != nil {
		t.Fatal(err)
	}
	return ep
}

func newSecret(t *testing.T) signing.Secret {
	t.Helper()
	s, err := signing.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var eventSeq atomic.Int64

// job returns a delivery job of a fresh event for ep.
func job(ep domain.Endpoint, occurred time.Time) domain.DeliveryJob {
	id := fmt.Sprintf("evt_%d_%d", time.Now().UnixNano(), eventSeq.Add(1))
	return domain.DeliveryJob{
		TenantID:   ep.TenantID,
		EndpointID: ep.ID,
		Event: domain.Event{
			ID: id, TenantID: ep.TenantID, Type: "export.done", OccurredAt: occurred.UTC(),
			Data: json.RawMessage(`{"export_id":"exp_1","marker":"payload-marker-7f3a"}`),
		},
	}
}

// message is the SQS record of j at its receiveCount-th receive, as Lambda hands it over.
func message(t *testing.T, j domain.DeliveryJob, receiveCount int) events.SQSMessage {
	t.Helper()
	body, attrs, err := queue.EncodeDeliveryJob(j)
	if err != nil {
		t.Fatal(err)
	}
	id := "msg-" + j.Event.ID
	return localsqs.NewEvent([]sqstypes.Message{{
		MessageId:         aws.String(id),
		ReceiptHandle:     aws.String("rh-" + id),
		Body:              &body,
		Attributes:        map[string]string{"ApproximateReceiveCount": strconv.Itoa(receiveCount)},
		MessageAttributes: attrs,
	}}, "arn:aws:sqs:us-east-1:123456789012:DeliveryQueue", "").Records[0]
}

func (f *fixture) handle(t *testing.T, msgs ...events.SQSMessage) map[string]bool {
	t.Helper()
	resp, err := f.h.Handle(f.ctx, events.SQSEvent{Records: msgs})
	if err != nil {
		t.Fatalf("Handle returned an error: %v", err)
	}
	// After each batch, as shared/wiring does for every consumer.
	if err := f.metrics.Flush(); err != nil {
		t.Fatal(err)
	}
	failed := map[string]bool{}
	for _, it := range resp.BatchItemFailures {
		failed[it.ItemIdentifier] = true
	}
	return failed
}

// attempts lists the endpoint's recorded attempts, oldest first.
func (f *fixture) attempts(t *testing.T, ep domain.Endpoint) []domain.Attempt {
	t.Helper()
	got, _, err := f.deliveries.List(f.ctx, ep.TenantID, ep.ID, "", 100, "")
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(got)
	return got
}

func (f *fixture) get(t *testing.T, ep domain.Endpoint) domain.Endpoint {
	t.Helper()
	got, err := f.endpoints.GetEndpoint(f.ctx, ep.TenantID, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func verifier(t *testing.T, s signing.Secret) *standardwebhooks.Webhook {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(s.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return wh
}

func statuses(as []domain.Attempt) []domain.DeliveryStatus {
	out := make([]domain.DeliveryStatus, len(as))
	for i, a := range as {
		out[i] = a.Status
	}
	return out
}

// ---------------------------------------------------------------- tests

func TestDeliverSignedAndVerified(t *testing.T) {
	t.Parallel()
	f := newFixture(t, allowLoopback, nil)
	rc := newReceiver(t, nil)
	secret := newSecret(t)
	ep := f.endpoint(t, rc.URL+"/hooks?token=url-token-9c1d", time.Time{}, secret)

	base := time.Now().Add(-time.Hour).UTC()
	jobs := []domain.DeliveryJob{job(ep, base.Add(2*time.Second)), job(ep, base.Add(3*time.Second)), job(ep, base)}
	var msgs []events.SQSMessage
	for _, j := range jobs {
		msgs = append(msgs, message(t, j, 1))
	}
	if failed := f.handle(t, msgs...); len(failed) != 0 {
		t.Fatalf("failures reported: %v", failed)
	}

	reqs := rc.requests()
	if len(reqs) != len(jobs) {
		t.Fatalf("receiver got %d requests, want %d", len(reqs), len(jobs))
	}
	wh := verifier(t, secret)
	byID := map[string]domain.DeliveryJob{}
	for _, j := range jobs {
		byID[j.Event.ID] = j
	}
	for _, r := range reqs {
		if err := wh.Verify(r.body, r.header); err != nil {
			t.Errorf("official verifier: %v", err)
		}
		j, ok := byID[r.header.Get("webhook-id")]
		if !ok {
			t.Fatalf("webhook-id %q is not one of the event ids", r.header.Get("webhook-id"))
		}
		want, _ := j.Event.Payload()
		if !bytes.Equal(r.body, want) {
			t.Errorf("body = %s, want %s", r.body, want)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		if ua := r.header.Get("User-Agent"); ua != "DataJetty-Webhooks-Test/1.0" {
			t.Errorf("User-Agent = %q", ua)
		}
		if n := len(strings.Fields(r.header.Get("webhook-signature"))); n != 1 {
			t.Errorf("%d signatures, want 1", n)
		}
	}

	got := f.attempts(t, ep)
	if len(got) != len(jobs) {
		t.Fatalf("%d attempts recorded, want %d", len(got), len(jobs))
	}
	for _, a := range got {
		if a.Status != domain.DeliverySucceeded || a.HTTPStatus != http.StatusNoContent || a.Number != 1 || a.ErrorClass != "" {
			t.Errorf("attempt %+v", a)
		}
	}
	// The watermark is the newest occurred_at among the batch's successes.
	if wm := f.get(t, ep).Watermark; !wm.Equal(base.Add(3 * time.Second)) {
		t.Errorf("watermark = %s, want %s", wm, base.Add(3*time.Second))
	}

	logs := f.logs.String()
	for _, secretish := range []string{secret.Encode(), reqs[0].header.Get("webhook-signature"), "payload-marker-7f3a", "url-token-9c1d"} {
		if strings.Contains(logs, secretish) {
			t.Errorf("logs contain %q:\n%s", secretish, logs)
		}
	}
	lines := logLines(f.logs, t, "delivery attempt")
	if len(lines) != len(jobs) {
		t.Fatalf("%d attempt log lines, want %d", len(lines), len(jobs))
	}
	for _, k := range []string{"tenant_id", "endpoint_id", "event_id", "attempt", "status", "http_status", "latency_ms"} {
		if _, ok := lines[0][k]; !ok {
			t.Errorf("attempt log line lacks %s: %v", k, lines[0])
		}
	}
}

func TestDeliverRotationSignsWithBothSecrets(t *testing.T) {
	t.Parallel()
	f := newFixture(t, allowLoopback, nil)
	rc := newReceiver(t, nil)
	current, previous := newSecret(t), newSecret(t)
	rotating := f.endpoint(t, rc.URL+"/rotating", time.Now().Add(time.Hour), current, previous)
	rotated := f.endpoint(t, rc.URL+"/rotated", time.Now().Add(-time.Second), current, previous)

	if failed := f.handle(t, message(t, job(rotating, time.Now()), 1), message(t, job(rotated, time.Now()), 1)); len(failed) != 0 {
		t.Fatalf("failures reported: %v", failed)
	}
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("receiver got %d requests", len(reqs))
	}
	for _, r := range reqs {
		sigs := strings.Fields(r.header.Get("webhook-signature"))
		if err := verifier(t, current).Verify(r.body, r.header); err != nil {
			t.Errorf("%s: the current secret does not verify: %v", r.path, err)
		}
		switch r.path {
		case "/rotating":
			if len(sigs) != 2 {
				t.Fatalf("during the rotation grace: %d signatures, want 2", len(sigs))
			}
			// Each signature alone verifies with exactly one of the secrets, so a receiver
			// holding either secret accepts the delivery.
			for name, s := range map[string]signing.Secret{"current": current, "previous": previous} {
				verified := 0
				for _, sig := range sigs {
					h := r.header.Clone()
					h.Set("webhook-signature", sig)
					if verifier(t, s).Verify(r.body, h) == nil {
						verified++
					}
				}
				if verified != 1 {
					t.Errorf("%d signatures verify alone with the %s secret, want 1", verified, name)
				}
			}
		case "/rotated":
			if len(sigs) != 1 {
				t.Errorf("after the rotation grace: %d signatures, want 1", len(sigs))
			}
			if verifier(t, previous).Verify(r.body, r.header) == nil {
				t.Error("the expired previous secret still signs")
			}
		default:
			t.Errorf("unexpected path %q", r.path)
		}
	}
}

func TestDeliverRetriesOnScheduleThenSucceeds(t *testing.T) {
	t.Parallel()
	f := newFixture(t, allowLoopback, nil)
	failures := []int{http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusBadRequest}
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= len(failures) {
			w.WriteHeader(failures[n-1])
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	secret := newSecret(t)
	ep := f.endpoint(t, rc.URL, time.Time{}, secret)
	j := job(ep, time.Now())

	// Each call is the same message received again, as SQS redelivers it.
	for receive := 1; receive <= len(failures)+1; receive++ {
		msg := message(t, j, receive)
		failed := f.handle(t, msg)
		if want := receive <= len(failures); failed[msg.MessageId] != want {
			t.Fatalf("receive %d: reported failed = %v, want %v", receive, failed[msg.MessageId], want)
		}
	}
	msg := message(t, j, 1)
	if got, want := f.vis.of(msg.ReceiptHandle), []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute}; !slices.Equal(got, want) {
		t.Errorf("visibility delays = %v, want the schedule %v", got, want)
	}
	reqs := rc.requests()
	if len(reqs) != 4 {
		t.Fatalf("receiver got %d requests, want 4", len(reqs))
	}
	for i, r := range reqs {
		if id := r.header.Get("webhook-id"); id != j.Event.ID {
			t.Errorf("request %d: webhook-id %q, want the event id %q on every retry", i+1, id, j.Event.ID)
		}
		if err := verifier(t, secret).Verify(r.body, r.header); err != nil {
			t.Errorf("request %d: %v", i+1, err)
		}
	}
	got := f.attempts(t, ep)
	wantStatus := []domain.DeliveryStatus{domain.DeliveryPending, domain.DeliveryPending, domain.DeliveryPending, domain.DeliverySucceeded}
	if !slices.Equal(statuses(got), wantStatus) {
		t.Fatalf("recorded statuses %v, want %v", statuses(got), wantStatus)
	}
	for i, a := range got[:3] {
		if a.Number != i+1 || a.HTTPStatus != failures[i] {
			t.Errorf("attempt %d recorded as number %d status %d", i+1, a.Number, a.HTTPStatus)
		}
		if d := a.NextAt.Sub(a.AttemptedAt); d != f.vis.of(msg.ReceiptHandle)[i] {
			t.Errorf("attempt %d: next attempt in %s, want the visibility delay", i+1, d)
		}
	}
	classes := []string{got[0].ErrorClass, got[1].ErrorClass, got[2].ErrorClass}
	if want := []string{ClassHTTP5xx, ClassHTTP5xx, ClassHTTP4xx}; !slices.Equal(classes, want) {
		t.Errorf("error classes %v, want %v", classes, want)
	}
}

func TestDeliverHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	f := newFixture(t, allowLoopback, nil)
	date := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	cases := []struct {
		status     int
		retryAfter string
		min, max   time.Duration
	}{
		{http.StatusTooManyRequests, "120", 2 * time.Minute, 2 * time.Minute},
		{http.StatusServiceUnavailable, date, 59 * time.Minute, time.Hour},
		{http.StatusTooManyRequests, "1", 5 * time.Second, 5 * time.Second},        // too short: the schedule
		{http.StatusServiceUnavailable, "86400", 5 * time.Second, 5 * time.Second}, // too long: the schedule
		{http.StatusInternalServerError, "120", 5 * time.Second, 5 * time.Second},  // only 429 and 503 count
	}
	for _, c := range cases {
		rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", c.retryAfter)
			w.WriteHeader(c.status)
		})
		ep := f.endpoint(t, rc.URL, time.Time{}, newSecret(t))
		msg := message(t, job(ep, time.Now()), 1)
		if !f.handle(t, msg)[msg.MessageId] {
			t.Fatalf("%d Retry-After %q: not reported failed", c.status, c.retryAfter)
		}
		got := f.vis.of(msg.ReceiptHandle)
		if len(got) != 1 || got[0] < c.min || got[0] > c.max {
			t.Errorf("%d Retry-After %q: visibility %v, want within [%s, %s]", c.status, c.retryAfter, got, c.min, c.max)
		}
	}
}

func TestDeliverLastAttemptIsDead(t *testing.T) {
	t.Parallel()
	f := newFixture(t, allowLoopback, nil)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	ep := f.endpoint(t, rc.URL, time.Time{}, newSecret(t))
	msg := message(t, job(ep, time.Now()), 8)

	if !f.handle(t, msg)[msg.MessageId] {
		t.Fatal("the last failed attempt was not reported failed (SQS redrive needs it)")
	}
	if got := f.vis.of(msg.ReceiptHandle); !slices.Equal(got, []time.Duration{0}) {
		t.Errorf("visibility = %v, want [0] so the message reaches the DLQ at once", got)
	}
	got := f.attempts(t, ep)
	if len(got) != 1 || got[0].Status != domain.DeliveryDead || got[0].Number != 8 || !got[0].NextAt.IsZero() {
		t.Fatalf("recorded %+v, want one dead attempt 8", got)
	}
	if st := f.get(t, ep).Status; st != domain.StatusActive {
		t.Errorf("one exhausted delivery disabled the endpoint (%s)", st)
	}
}

// TestDeliverDeadLettersThroughRedrive runs the handler against the real DeliveryQueue:
// each failed receive reports failure, and after maxReceiveCount (8) receives the queue's
// redrive policy moves the message to DeliveryDLQ. moto implements the redrive on receive,
// as SQS does. The schedule is all zeros so the test need not wait for the real delays.
func TestDeliverDeadLettersThroughRedrive(t *testing.T) {
	t.Parallel()
	f := newFixture(t, allowLoopback, nil)
	sqsClient := sqs.NewFromConfig(testenv.AWSConfig(t))
	queueURL := f.stackEnv["WEBHOOKS_DELIVERY_QUEUE_URL"]
	dlqURL := f.stackRes["DeliveryDLQ"]
	opts := f.h.opts
	opts.Schedule = []time.Duration{0}
	h, err := New(Deps{
		Endpoints: f.endpoints, Secrets: f.box, Log: f.deliveries, State: f.endpoints,
		Visibility: queue.NewVisibility(sqsClient, queueURL),
		Client:     ssrf.NewClient(allowLoopback, 5*time.Second),
		Logger:     f.h.logger, Options: opts,
	})
	if err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	ep := f.endpoint(t, rc.URL, time.Time{}, newSecret(t))
	j := job(ep, time.Now())
	body, attrs, err := queue.EncodeDeliveryJob(j)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqsClient.SendMessage(f.ctx, &sqs.SendMessageInput{QueueUrl: &queueURL, MessageBody: &body, MessageAttributes: attrs}); err != nil {
		t.Fatal(err)
	}

	var counts []string
	for range 20 {
		out, err := sqsClient.ReceiveMessage(f.ctx, &sqs.ReceiveMessageInput{
			QueueUrl: &queueURL, MaxNumberOfMessages: 10,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			counts = append(counts, m.Attributes["ApproximateReceiveCount"])
		}
		ev := localsqs.NewEvent(out.Messages, "", "us-east-1")
		resp, _ := h.Handle(f.ctx, ev)
		if len(resp.BatchItemFailures) != len(ev.Records) {
			t.Fatalf("receive %v: %d failures reported, want %d", counts, len(resp.BatchItemFailures), len(ev.Records))
		}
	}
	if want := []string{"1", "2", "3", "4", "5", "6", "7", "8"}; !slices.Equal(counts, want) {
		t.Fatalf("receive counts %v, want %v", counts, want)
	}
	out, err := sqsClient.ReceiveMessage(f.ctx, &sqs.ReceiveMessageInput{QueueUrl: &dlqURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != body {
		t.Fatalf("DLQ holds %d messages, want the delivery job", len(out.Messages))
	}
	got := f.attempts(t, ep)
	want := slices.Repeat([]domain.DeliveryStatus{domain.DeliveryPending}, 7)
	want = append(want, domain.DeliveryDead)
	if !slices.Equal(statuses(got), want) {
		t.Errorf("recorded %v, want %v", statuses(got), want)
	}
	if len(rc.requests()) != 8 {
		t.Errorf("receiver got %d requests, want 8", len(rc.requests()))
	}
}

func TestDeliverGoneDisablesEndpoint(t *testing.T) {
	t.Parallel()
	f := newFixture(t, allowLoopback, nil)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	ep := f.endpoint(t, rc.URL, time.Time{}, newSecret(t))

	msg := message(t, job(ep, time.Now()), 1)
	if failed := f.handle(t, msg); len(failed) != 0 {
		t.Fatalf("410 Gone reported as failure: %v (it is final, nothing to retry)", failed)
	}
	got := f.get(t, ep)
	if got.Status != domain.StatusDisabled || got.DisabledReason != domain.DisabledGone || got.DisabledDetail != "410 Gone" || got.Version != ep.Version+1 {
		t.Fatalf("endpoint after 410: %s %q (%q) v%d", got.Status, got.DisabledReason, got.DisabledDetail, got.Version)
	}

	// Later messages are acknowledged and skipped; the receiver hears nothing more.
	later := message(t, job(ep, time.Now()), 1)
	if failed := f.handle(t, later); len(failed) != 0 {
		t.Fatalf("a delivery to a disabled endpoint reported failure: %v", failed)
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
	attempts := f.attempts(t, ep)
	if !slices.Equal(statuses(attempts), []domain.DeliveryStatus{domain.DeliveryDead, domain.DeliverySkipped}) {
		t.Fatalf("recorded %v, want dead then skipped", statuses(attempts))
	}
	if attempts[0].ErrorClass != ClassGone || attempts[0].HTTPStatus != http.StatusGone {
		t.Errorf("410 attempt recorded as %+v", attempts[0])
	}
	if attempts[1].ErrorClass != ClassDisabled {
		t.Errorf("the skipped attempt must say the endpoint is disabled: %+v", attempts[1])
	}
}

func TestDeliverAutoDisablesAfterThreshold(t *testing.T) {
	t.Parallel()
	emf := &testenv.Buffer{}
	f := newFixture(t, allowLoopback, func(d *Deps) { d.Metrics = metrics.New(emf, "deliver") })
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	ep := f.endpoint(t, rc.URL, time.Time{}, newSecret(t))

	threshold := DefaultOptions().AutoDisableThreshold
	var msgs []events.SQSMessage
	for range threshold {
		msgs = append(msgs, message(t, job(ep, time.Now()), DefaultOptions().MaxAttempts))
	}
	// All of them in one batch: the streak's increments race, and exactly one disables.
	if failed := f.handle(t, msgs...); len(failed) != threshold {
		t.Fatalf("%d failures reported, want %d", len(failed), threshold)
	}
	got := f.get(t, ep)
	if want := fmt.Sprintf("%d consecutive deliveries exhausted all retries", threshold); got.Status != domain.StatusDisabled || got.DisabledReason != domain.DisabledFailing || got.DisabledDetail != want {
		t.Fatalf("endpoint: %s %q (%q), want disabled failing %q", got.Status, got.DisabledReason, got.DisabledDetail, want)
	}
	if lines := logLines(f.logs, t, "endpoint auto-disabled"); len(lines) != 1 {
		t.Errorf("%d \"endpoint auto-disabled\" log lines, want 1", len(lines))
	} else if lines[0]["endpoint_id"] != ep.ID || lines[0]["tenant_id"] != tenant {
		t.Errorf("auto-disable log line lacks the endpoint: %v", lines[0])
	}

	counts := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(emf.String()), "\n") {
		var doc map[string]any
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatalf("EMF line %q: %v", line, err)
		}
		for _, name := range []string{metrics.EndpointsAutoDisabled, metrics.DeliveriesDeadLetter} {
			if v, ok := doc[name].(float64); ok {
				counts[name] += v
			}
		}
	}
	if counts[metrics.EndpointsAutoDisabled] != 1 || counts[metrics.DeliveriesDeadLetter] != float64(threshold) {
		t.Errorf("metrics %v, want 1 auto-disabled endpoint and %d dead-lettered deliveries", counts, threshold)
	}

	later := message(t, job(ep, time.Now()), 1)
	if failed := f.handle(t, later); len(failed) != 0 {
		t.Fatalf("a delivery to the auto-disabled endpoint reported failure: %v", failed)
	}
	if n := len(rc.requests()); n != threshold {
		t.Errorf("receiver got %d requests, want %d", n, threshold)
	}
}

func TestDeliverBlocksPrivateDestinations(t *testing.T) {
	t.Parallel()
	f := newFixture(t, ssrf.Policy{}, nil) // production policy
	rc := newReceiver(t, nil)
	port := strconv.Itoa(rc.Listener.Addr().(*net.TCPAddr).Port)
	for _, url := range []string{"http://127.0.0.1:" + port + "/hook", "http://localhost:" + port + "/hook"} {
		ep := f.endpoint(t, url, time.Time{}, newSecret(t))
		msg := message(t, job(ep, time.Now()), 1)
		if !f.handle(t, msg)[msg.MessageId] {
			t.Errorf("%s: not reported failed", url)
		}
		got := f.attempts(t, ep)
		if len(got) != 1 || got[0].ErrorClass != ClassBlocked || got[0].Status != domain.DeliveryPending || got[0].HTTPStatus != 0 {
			t.Errorf("%s: recorded %+v, want a pending attempt with error class blocked", url, got)
		}
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("the private receiver got %d requests", n)
	}
}

func TestDeliverRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, allowLoopback, nil)
	target := newReceiver(t, nil)
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	})
	ep := f.endpoint(t, rc.URL, time.Time{}, newSecret(t))
	msg := message(t, job(ep, time.Now()), 1)
	if !f.handle(t, msg)[msg.MessageId] {
		t.Fatal("a redirect was reported delivered")
	}
	if n := len(target.requests()); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
	if got := f.attempts(t, ep); len(got) != 1 || got[0].ErrorClass != ClassRedirect || got[0].HTTPStatus != http.StatusTemporaryRedirect {
		t.Errorf("recorded %+v", got)
	}
}

func TestDeliverTimeoutAndBodyCap(t *testing.T) {
	t.Parallel()
	f := newFixture(t, allowLoopback, func(d *Deps) { d.Options.AttemptTimeout = 2 * time.Second })
	slow := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	// A receiver that answers 200 and then streams forever: only the cap ends the read.
	chatty := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	slowEP := f.endpoint(t, slow.URL, time.Time{}, newSecret(t))
	chattyEP := f.endpoint(t, chatty.URL, time.Time{}, newSecret(t))
	slowMsg, chattyMsg := message(t, job(slowEP, time.Now()), 1), message(t, job(chattyEP, time.Now()), 1)

	start := time.Now()
	failed := f.handle(t, slowMsg, chattyMsg)
	if elapsed := time.Since(start); elapsed > 6*time.Second {
		t.Errorf("the batch took %s; the attempt timeout is 2s", elapsed)
	}
	if !failed[slowMsg.MessageId] || failed[chattyMsg.MessageId] {
		t.Fatalf("failures %v: want the slow one only", failed)
	}
	if got := f.attempts(t, slowEP); len(got) != 1 || got[0].ErrorClass != ClassTimeout {
		t.Errorf("slow receiver recorded %+v, want error class timeout", got)
	}
	if got := f.attempts(t, chattyEP); len(got) != 1 || got[0].Status != domain.DeliverySucceeded {
		t.Errorf("streaming receiver recorded %+v, want succeeded", got)
	}
}

func TestDeliverBatchIsConcurrent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, allowLoopback, nil)
	var inFlight, peak atomic.Int32
	const pause = 500 * time.Millisecond
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(pause)
		inFlight.Add(-1)
		w.WriteHeader(http.StatusOK)
	})
	ep := f.endpoint(t, rc.URL, time.Time{}, newSecret(t))
	var msgs []events.SQSMessage
	for range 10 {
		msgs = append(msgs, message(t, job(ep, time.Now()), 1))
	}
	if failed := f.handle(t, msgs...); len(failed) != 0 {
		t.Fatalf("failures: %v", failed)
	}
	// All ten in flight at once is the proof (each receiver holds its request for the
	// pause); the wall time is not asserted, it depends on the machine's load.
	if p := peak.Load(); p != 10 {
		t.Errorf("at most %d deliveries were in flight at once, want all 10", p)
	}
}

// writeLog records the AttemptLog calls of a handler (which events each wrote, and whether
// it had ended) over the real one.
type writeLog struct {
	AttemptLog
	mu     sync.Mutex
	writes [][]string
	ended  []bool
	first  chan struct{} // closed when the first write has ended
}

func (l *writeLog) Record(ctx context.Context, as []domain.Attempt) error {
	var ids []string
	for _, a := range as {
		ids = append(ids, a.EventID)
	}
	l.mu.Lock()
	n := len(l.writes)
	l.writes, l.ended = append(l.writes, ids), append(l.ended, false)
	l.mu.Unlock()
	err := l.AttemptLog.Record(ctx, as)
	l.mu.Lock()
	l.ended[n] = true
	l.mu.Unlock()
	if n == 0 {
		close(l.first)
	}
	return err
}

// watermarkLog records the watermark writes over the real endpoint state.
type watermarkLog struct {
	EndpointState
	mu     sync.Mutex
	writes []string // endpoint ids
}

func (w *watermarkLog) AdvanceWatermark(ctx context.Context, tenantID, endpointID string, to time.Time) (*domain.Endpoint, error) {
	w.mu.Lock()
	w.writes = append(w.writes, endpointID)
	w.mu.Unlock()
	return w.EndpointState.AdvanceWatermark(ctx, tenantID, endpointID, to)
}

// writesFixture is a fixture whose attempt-log and watermark writes are recorded, and
// whose batches count as lagging after a second, not 100 ms: deliveries that a loaded
// machine spreads a little still end together.
func writesFixture(t *testing.T) (*fixture, *writeLog, *watermarkLog) {
	t.Helper()
	log, marks := &writeLog{first: make(chan struct{})}, &watermarkLog{}
	f := newFixture(t, allowLoopback, func(d *Deps) {
		log.AttemptLog, marks.EndpointState = d.Log, d.State
		d.Log, d.State = log, marks
	})
	f.h.lagAfter = time.Second
	return f, log, marks
}

// TestDeliverWritesWhileALaggardDelivers: the attempts of a batch's deliveries that are
// done, and the watermark of an endpoint none of whose deliveries is still running, are
// written while a slow receiver still holds its POST; the laggard's attempt and watermark
// follow it. Every write has ended when Handle returns, and a batch makes at most two
// attempt-log writes and one watermark write per endpoint.
func TestDeliverWritesWhileALaggardDelivers(t *testing.T) {
	t.Parallel()
	f, log, marks := writesFixture(t)
	release := make(chan struct{})
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		w.WriteHeader(http.StatusNoContent)
	})
	fast, slow := f.endpoint(t, rc.URL+"/fast", time.Time{}, newSecret(t)), f.endpoint(t, rc.URL+"/slow", time.Time{}, newSecret(t))
	var msgs []events.SQSMessage
	for range 9 {
		msgs = append(msgs, message(t, job(fast, time.Now()), 1))
	}
	msgs = append(msgs, message(t, job(slow, time.Now()), 1))
	handled := make(chan map[string]bool, 1)
	go func() { handled <- f.handle(t, msgs...) }()

	select {
	case <-log.first:
	case <-time.After(30 * time.Second):
		close(release)
		t.Fatal("nothing was written while the slow receiver held its POST")
	}
	log.mu.Lock()
	early := slices.Clone(log.writes[0])
	log.mu.Unlock()
	marks.mu.Lock()
	earlyMarks := slices.Clone(marks.writes)
	marks.mu.Unlock()
	close(release)
	if failed := <-handled; len(failed) != 0 {
		t.Fatalf("failures: %v", failed)
	}

	if len(early) != 9 || slices.Contains(early, *msgs[9].MessageAttributes["event_id"].StringValue) {
		t.Errorf("written during the slow POST: %v, want the 9 fast deliveries", early)
	}
	if !slices.Equal(earlyMarks, []string{fast.ID}) {
		t.Errorf("watermarks written during the slow POST: %v, want the fast endpoint's only", earlyMarks)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.writes) != 2 || len(log.writes[1]) != 1 || !log.ended[0] || !log.ended[1] {
		t.Errorf("attempt-log writes %v (ended %v), want the 9, then the laggard's, both ended when Handle returned", log.writes, log.ended)
	}
	marks.mu.Lock()
	defer marks.mu.Unlock()
	if len(marks.writes) != 2 || marks.writes[1] != slow.ID {
		t.Errorf("watermark writes %v, want one per endpoint, the slow one's after its POST", marks.writes)
	}
	if got := statuses(f.attempts(t, fast)); len(got) != 9 {
		t.Errorf("fast endpoint's log: %v", got)
	}
	if got := statuses(f.attempts(t, slow)); len(got) != 1 || got[0] != domain.DeliverySucceeded {
		t.Errorf("slow endpoint's log: %v", got)
	}
}

// TestDeliverWritesOnceWhenTheBatchEndsTogether: deliveries that end together are written
// with one attempt-log write and one watermark write per endpoint, after the last.
func TestDeliverWritesOnceWhenTheBatchEndsTogether(t *testing.T) {
	t.Parallel()
	f, log, marks := writesFixture(t)
	rc := newReceiver(t, nil)
	ep := f.endpoint(t, rc.URL, time.Time{}, newSecret(t))
	var msgs []events.SQSMessage
	for range 10 {
		msgs = append(msgs, message(t, job(ep, time.Now()), 1))
	}
	if failed := f.handle(t, msgs...); len(failed) != 0 {
		t.Fatalf("failures: %v", failed)
	}
	if len(log.writes) != 1 || len(log.writes[0]) != 10 || len(marks.writes) != 1 {
		t.Errorf("attempt-log writes %v, watermark writes %v; want one of 10 and one", log.writes, marks.writes)
	}
}

// TestDeliverLagIsReadOnTheHandlersClock: on a clock that stands still during the batch
// (make cost's simulated one), a slow delivery does not lag, so the batch is written once.
func TestDeliverLagIsReadOnTheHandlersClock(t *testing.T) {
	t.Parallel()
	log := &writeLog{first: make(chan struct{})}
	frozen := time.Now()
	f := newFixture(t, allowLoopback, func(d *Deps) {
		log.AttemptLog, d.Log = d.Log, log
		d.Now = func() time.Time { return frozen }
	})
	f.h.lagAfter = 20 * time.Millisecond
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond) // 15 lags on the wall clock
		}
		w.WriteHeader(http.StatusNoContent)
	})
	fast, slow := f.endpoint(t, rc.URL+"/fast", time.Time{}, newSecret(t)), f.endpoint(t, rc.URL+"/slow", time.Time{}, newSecret(t))
	msgs := []events.SQSMessage{message(t, job(fast, frozen), 1), message(t, job(slow, frozen), 1)}
	if failed := f.handle(t, msgs...); len(failed) != 0 {
		t.Fatalf("failures: %v", failed)
	}
	if len(log.writes) != 1 || len(log.writes[0]) != 2 {
		t.Errorf("attempt-log writes %v, want one of both", log.writes)
	}
}

func TestDeliverCachesEndpoint(t *testing.T) {
	t.Parallel()
	f := newFixture(t, allowLoopback, nil)
	rc := newReceiver(t, nil)
	current, previous := newSecret(t), newSecret(t)
	ep := f.endpoint(t, rc.URL, time.Now().Add(time.Hour), current, previous)

	batch := func() {
		t.Helper()
		var msgs []events.SQSMessage
		for range 10 {
			msgs = append(msgs, message(t, job(ep, time.Now()), 1))
		}
		if failed := f.handle(t, msgs...); len(failed) != 0 {
			t.Fatalf("failures: %v", failed)
		}
	}
	batch()
	if reads, opens := f.source.n.Load(), f.opener.n.Load(); reads != 1 || opens != 2 {
		t.Fatalf("10 messages for one endpoint: %d endpoint reads and %d secret decryptions, want 1 and 2", reads, opens)
	}
	batch()
	if reads := f.source.n.Load(); reads != 1 {
		t.Fatalf("a second batch within the cache TTL read the endpoint again (%d reads)", reads)
	}
	f.clock.advance(DefaultOptions().CacheTTL + time.Second)
	batch()
	if reads := f.source.n.Load(); reads != 2 {
		t.Fatalf("after the cache TTL: %d reads, want 2", reads)
	}
	if n := len(rc.requests()); n != 30 {
		t.Errorf("receiver got %d requests, want 30", n)
	}
}

func TestDeliverKeepsDecryptedSecretsAcrossEndpointReads(t *testing.T) {
	t.Parallel()
	f := newFixture(t, allowLoopback, nil)
	rc := newReceiver(t, nil)
	first := newSecret(t)
	ep := f.endpoint(t, rc.URL, time.Time{}, first)
	deliver := func() {
		t.Helper()
		if failed := f.handle(t, message(t, job(ep, time.Now()), 1)); len(failed) != 0 {
			t.Fatalf("failures: %v", failed)
		}
	}
	deliver()
	f.clock.advance(DefaultOptions().CacheTTL + time.Second)
	deliver()
	if reads, opens := f.source.n.Load(), f.opener.n.Load(); reads != 2 || opens != 1 {
		t.Fatalf("after the endpoint cache expired: %d endpoint reads and %d decryptions, want 2 and 1 (the secret is kept)", reads, opens)
	}

	// A rotation stores a new ciphertext: it is decrypted once the endpoint is read again,
	// and signs at once; the replaced one, still in its grace, comes from memory.
	second := newSecret(t)
	ct, err := f.box.Seal(f.ctx, tenant, ep.ID, second)
	if err != nil {
		t.Fatal(err)
	}
	rotated := ep
	rotated.PreviousSecretCiphertext, rotated.PreviousSecretExpiresAt = ep.SecretCiphertext, f.clock.Now().Add(time.Hour)
	rotated.SecretCiphertext, rotated.Version = ct, ep.Version+1
	if err := f.endpoints.UpdateEndpoint(f.ctx, rotated, ep.Version, ep.URL); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(DefaultOptions().CacheTTL + time.Second)
	reqs := rc.requests()
	deliver()
	if opens := f.opener.n.Load(); opens != 2 {
		t.Fatalf("after a rotation: %d decryptions in all, want 2 (only the new ciphertext)", opens)
	}
	last := rc.requests()[len(reqs)]
	if err := verifier(t, second).Verify(last.body, last.header); err != nil {
		t.Errorf("the new secret does not sign: %v", err)
	}
	if sigs := strings.Fields(last.header.Get("webhook-signature")); len(sigs) != 2 {
		t.Errorf("%d signatures during the grace, want 2", len(sigs))
	}

	// Past SecretCacheTTL, secrets are decrypted again.
	f.clock.advance(DefaultOptions().SecretCacheTTL)
	deliver()
	if opens := f.opener.n.Load(); opens != 4 {
		t.Errorf("past the secret cache's TTL: %d decryptions in all, want 4", opens)
	}
}

func TestDeliverCoalescesWatermarkWrites(t *testing.T) {
	t.Parallel()
	f := newFixture(t, allowLoopback, nil)
	rc := newReceiver(t, nil)
	ep := f.endpoint(t, rc.URL+"/a", time.Time{}, newSecret(t))
	other := f.endpoint(t, rc.URL+"/b", time.Time{}, newSecret(t))
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	deliver := func(target domain.Endpoint, occurred time.Time) {
		t.Helper()
		if failed := f.handle(t, message(t, job(target, occurred), 1)); len(failed) != 0 {
			t.Fatalf("failures: %v", failed)
		}
	}
	wm := func() time.Time { t.Helper(); return f.get(t, ep).Watermark }

	deliver(ep, base)
	if !wm().Equal(base) {
		t.Fatalf("watermark after the first success = %s, want %s at once", wm(), base)
	}
	deliver(ep, base.Add(time.Second))
	if !wm().Equal(base) {
		t.Fatalf("a second success within %s was written: watermark %s", DefaultOptions().WatermarkEvery, wm())
	}
	// The next batch after the period, whatever its endpoint, writes what waited.
	f.clock.advance(DefaultOptions().WatermarkEvery)
	deliver(other, base)
	if !wm().Equal(base.Add(time.Second)) {
		t.Fatalf("watermark after the period = %s, want %s", wm(), base.Add(time.Second))
	}
	// Flush (instance shutdown) writes what waits at once.
	f.clock.advance(DefaultOptions().WatermarkEvery)
	deliver(ep, base.Add(2*time.Second))
	deliver(ep, base.Add(3*time.Second))
	if !wm().Equal(base.Add(2 * time.Second)) {
		t.Fatalf("watermark = %s, want %s", wm(), base.Add(2*time.Second))
	}
	f.h.Flush(f.ctx)
	if !wm().Equal(base.Add(3 * time.Second)) {
		t.Fatalf("watermark after Flush = %s, want %s", wm(), base.Add(3*time.Second))
	}
	// An older success (a replay) never moves it back, written or flushed.
	deliver(ep, base.Add(-time.Hour))
	f.clock.advance(DefaultOptions().WatermarkEvery)
	f.h.Flush(f.ctx)
	if !wm().Equal(base.Add(3 * time.Second)) {
		t.Fatalf("an older success moved the watermark to %s", wm())
	}
}

func TestDeliverSkipsMissingEndpoint(t *testing.T) {
	t.Parallel()
	f := newFixture(t, allowLoopback, nil)
	ghost := domain.Endpoint{TenantID: tenant, ID: domain.NewID(domain.EndpointIDPrefix)}
	msg := message(t, job(ghost, time.Now()), 1)
	if failed := f.handle(t, msg); len(failed) != 0 {
		t.Fatalf("a delivery to a deleted endpoint reported failure: %v", failed)
	}
	if got := f.attempts(t, ghost); len(got) != 1 || got[0].Status != domain.DeliverySkipped || got[0].ErrorClass != ClassDeleted {
		t.Fatalf("recorded %+v, want one attempt skipped because the endpoint was deleted", got)
	}
}

func TestDeliverMalformedJobIsLeftToRedrive(t *testing.T) {
	t.Parallel()
	f := newFixture(t, allowLoopback, nil)
	rc := newReceiver(t, nil)
	ep := f.endpoint(t, rc.URL, time.Time{}, newSecret(t))
	noAttrs := events.SQSMessage{MessageId: "m-1", ReceiptHandle: "rh-1", Body: "{", Attributes: map[string]string{"ApproximateReceiveCount": "1"}}
	// A job of the first format: the whole job as JSON in the body, no attributes.
	v1 := noAttrs
	v1.MessageId, v1.ReceiptHandle = "m-2", "rh-2"
	v1.Body = `{"tenant_id":"` + tenant + `","endpoint_id":"` + ep.ID + `","event":{"id":"evt_v1","tenant_id":"` + tenant +
		`","type":"export.done","occurred_at":"2026-01-01T00:00:00Z","data":{}}}`
	future := message(t, job(ep, time.Now()), 1)
	future.MessageId, future.ReceiptHandle = "m-3", "rh-3"
	version := "3"
	future.MessageAttributes["job_version"] = events.SQSMessageAttribute{DataType: "String", StringValue: &version}

	failed := f.handle(t, noAttrs, v1, future)
	for _, m := range []events.SQSMessage{noAttrs, v1, future} {
		if !failed[m.MessageId] {
			t.Errorf("malformed job %s was acknowledged (it would be lost)", m.MessageId)
		}
		if got := f.vis.of(m.ReceiptHandle); len(got) != 0 {
			t.Errorf("visibility changed for malformed job %s: %v", m.MessageId, got)
		}
	}
	if n := len(logLines(f.logs, t, "malformed delivery job")); n != 3 {
		t.Errorf("%d log lines for the 3 malformed jobs", n)
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("receiver got %d requests for malformed jobs", n)
	}
}

// TestDeliverPostsTheMessageBody: the payload is the message body as the sender rendered
// it, POSTed and signed byte for byte, never rendered again.
func TestDeliverPostsTheMessageBody(t *testing.T) {
	t.Parallel()
	f := newFixture(t, allowLoopback, nil)
	rc := newReceiver(t, nil)
	secret := newSecret(t)
	ep := f.endpoint(t, rc.URL, time.Time{}, secret)
	j := job(ep, time.Now())
	j.Payload = []byte(`{"id":"` + j.Event.ID + `","type":"export.done","timestamp":"2026-01-01T00:00:00Z","data":{"as":"sent"}}`)
	msg := message(t, j, 1)
	if failed := f.handle(t, msg); len(failed) != 0 {
		t.Fatalf("failures reported: %v", failed)
	}
	reqs := rc.requests()
	if len(reqs) != 1 || !bytes.Equal(reqs[0].body, j.Payload) {
		t.Fatalf("receiver got %d requests (%v), want the message body once", len(reqs), reqs)
	}
	if err := verifier(t, secret).Verify(reqs[0].body, reqs[0].header); err != nil {
		t.Errorf("official verifier: %v", err)
	}
	if got := f.attempts(t, ep); len(got) != 1 || got[0].EventID != j.Event.ID || got[0].EventType != j.Event.Type ||
		!got[0].OccurredAt.Equal(j.Event.OccurredAt) || got[0].Status != domain.DeliverySucceeded {
		t.Errorf("recorded %+v", got)
	}
}

func TestDeliverOwnFailureIsRetriedUnrecorded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, allowLoopback, nil)
	rc := newReceiver(t, nil)
	ep := domain.Endpoint{
		TenantID: tenant, ID: domain.NewID(domain.EndpointIDPrefix), URL: rc.URL, Events: []string{"*"},
		Status: domain.StatusActive, Version: 1, CreatedAt: time.Now(), UpdatedAt: time.Now(),
		SecretCiphertext: []byte("not a KMS ciphertext"),
	}
	if err := f.endpoints.CreateEndpoint(f.ctx, ep); err != nil {
		t.Fatal(err)
	}
	msg := message(t, job(ep, time.Now()), 1)
	if !f.handle(t, msg)[msg.MessageId] {
		t.Fatal("a delivery that could not be signed was acknowledged")
	}
	if got := f.vis.of(msg.ReceiptHandle); !slices.Equal(got, []time.Duration{5 * time.Second}) {
		t.Errorf("visibility = %v, want the first scheduled delay", got)
	}
	if n := len(rc.requests()); n != 0 {
		t.Errorf("receiver got %d (unsigned?) requests", n)
	}
	if got := f.attempts(t, ep); len(got) != 0 {
		t.Errorf("recorded %+v for a delivery never attempted", got)
	}
}

func TestDeliverRecordFailureKeepsSuccess(t *testing.T) {
	t.Parallel()
	f := newFixture(t, allowLoopback, func(d *Deps) { d.Log = failingLog{} })
	rc := newReceiver(t, nil)
	ep := f.endpoint(t, rc.URL, time.Time{}, newSecret(t))
	occurred := time.Now().Add(-time.Minute).UTC()
	msg := message(t, job(ep, occurred), 1)
	if failed := f.handle(t, msg); len(failed) != 0 {
		t.Fatalf("a delivered message was reported failed because the log write failed: %v", failed)
	}
	if len(logLines(f.logs, t, "record delivery attempts")) != 1 {
		t.Error("the failed log write was not logged")
	}
	if wm := f.get(t, ep).Watermark; !wm.Equal(occurred) {
		t.Errorf("watermark = %s, want %s", wm, occurred)
	}
}
