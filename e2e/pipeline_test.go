// Package e2e runs the whole service against the emulator: the API, the three queue
// consumers (driven like Lambda's SQS event source by shared/dev/localsqs) and real HTTP
// receivers on loopback.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/datajetty/webhooks/shared/api"
	"github.com/datajetty/webhooks/shared/config"
	deliverypkg "github.com/datajetty/webhooks/shared/delivery"
	"github.com/datajetty/webhooks/shared/dev/devissuer"
	"github.com/datajetty/webhooks/shared/dev/localsqs"
	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/metrics"
	"github.com/datajetty/webhooks/shared/portal"
	"github.com/datajetty/webhooks/shared/signing"
	"github.com/datajetty/webhooks/shared/wiring"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// system is one provisioned stack with the API served and the consumers ready to poll.
type system struct {
	t        *testing.T
	sqs      *sqs.Client
	ingestQ  string
	api      string
	origin   string // the server's origin (API and portal)
	issuer   *devissuer.Issuer
	ingest   *localsqs.Poller
	deliver  *localsqs.Poller
	replay   *localsqs.Poller
	logs     *testenv.Buffer
	resource map[string]string
	env      map[string]string
	// emf holds each consumer's metrics (EMF lines), by its Function dimension.
	emf map[string]*testenv.Buffer

	mu          sync.Mutex
	portalPaths []string // every path the portal was asked for
}

// recordPortal notes each path requested from the portal (a browser test proves with it
// that injected markup never made the browser fetch anything).
func (s *system) recordPortal(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.portalPaths = append(s.portalPaths, r.URL.Path)
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// run polls the three queues in the background, as Lambda's event sources do, until the
// test ends (for tests that act through a browser and cannot drain by hand).
func (s *system) run() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, p := range []*localsqs.Poller{s.ingest, s.deliver, s.replay} {
		p.IdleWait = 100 * time.Millisecond
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.Run(ctx)
		}()
	}
	s.t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// newSystem provisions a system. tune, when given, adjusts the deliver function's options
// (the scenario tests shorten retries and the endpoint cache to walk a day in seconds).
func newSystem(t *testing.T, tune ...func(*deliverypkg.Options)) *system {
	return newSystemWith(t, nil, tune...)
}

// newSystemServing is newSystem with the API serving only the named routes (every route
// when none are named), like a deployment that lacks some of them.
func newSystemServing(t *testing.T, routes ...string) *system { return newSystemWith(t, routes) }

func newSystemWith(t *testing.T, routes []string, tune ...func(*deliverypkg.Options)) *system {
	t.Helper()
	stack := testenv.Stack(t, nil)
	iss, err := devissuer.New("https://issuer.test/", "webhooks-e2e")
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(iss.JWKSHandler())
	t.Cleanup(jwks.Close)
	env := map[string]string{}
	for k, v := range stack.Env {
		env[k] = v
	}
	env["WEBHOOKS_JWKS_URL"], env["WEBHOOKS_JWT_ISSUER"], env["WEBHOOKS_JWT_AUDIENCE"] = jwks.URL, "https://issuer.test/", "webhooks-e2e"
	env["WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = "true"
	cfg, err := config.FromMap(env)
	if err != nil {
		t.Fatal(err)
	}
	awsCfg := testenv.AWSConfig(t)
	logs := &testenv.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := wiring.API(context.Background(), cfg, awsCfg, wiring.APIOptions{Logger: logger}, routes...)
	if err != nil {
		t.Fatal(err)
	}
	// The API and the tenant portal on one origin, as behind API Gateway.
	mux := http.NewServeMux()
	mux.Handle(api.BasePath+"/", h)
	s := &system{t: t, sqs: sqs.NewFromConfig(awsCfg), ingestQ: stack.Resources["IngestQueue"], issuer: iss, logs: logs, resource: stack.Resources, env: env,
		emf: map[string]*testenv.Buffer{"ingest": {}, "deliver": {}, "replay-worker": {}}}
	// The portal is told what this API serves, as the deployed portal function is.
	page, err := portal.NewHandler(api.BasePath, cfg.PortalFrameAncestors, api.RouteKeys(routes...))
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(api.BasePath+portal.Prefix, page)
	mux.Handle(api.BasePath+portal.Prefix+"/", s.recordPortal(page))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.origin, s.api = srv.URL, srv.URL+api.BasePath
	poller := func(queue, name string, build func(config.Config, aws.Config, wiring.WorkerOptions) (wiring.SQSHandler, error)) *localsqs.Poller {
		o := wiring.WorkerOptions{Logger: logger, Metrics: metrics.New(s.emf[name], name)}
		// Every batch writes its watermarks: these tests read the watermark right after the
		// deliveries they make, with no later batch to write a coalesced one (in AWS it waits
		// for the instance's next batch or its SIGTERM; TestDeliverCoalescesWatermarkWrites
		// and TestShutdownWorkRunsOnSIGTERM cover that, docs/events.md says it).
		tune := append([]func(*deliverypkg.Options){func(d *deliverypkg.Options) { d.WatermarkEvery = 0 }}, tune...)
		for _, f := range tune {
			prev := o.TuneDelivery
			o.TuneDelivery = func(d *deliverypkg.Options) {
				if prev != nil {
					prev(d)
				}
				f(d)
			}
		}
		w, err := build(cfg, awsCfg, o)
		if err != nil {
			t.Fatal(err)
		}
		return &localsqs.Poller{Client: s.sqs, QueueURL: queue, Handler: localsqs.Handler(w), Logger: logger}
	}
	s.ingest = poller(stack.Resources["IngestQueue"], "ingest", wiring.Ingest)
	s.deliver = poller(stack.Resources["DeliveryQueue"], "deliver", wiring.Deliver)
	s.replay = poller(stack.Resources["ReplayQueue"], "replay-worker", wiring.ReplayWorker)
	return s
}

// drain polls the consumers until a full round handles nothing.
func (s *system) drain() {
	s.t.Helper()
	for round := 0; round < 50; round++ {
		total := 0
		for _, p := range []*localsqs.Poller{s.ingest, s.replay, s.deliver} {
			n, err := p.Once(context.Background())
			if err != nil {
				s.t.Fatalf("poll %s: %v", p.QueueURL, err)
			}
			total += n
		}
		if total == 0 {
			return
		}
	}
	s.t.Fatal("queues did not drain")
}

// call makes one API request as the tenant, the way a test checks what the API holds. The
// tenant's rate limit (10 requests a second) is shared with whatever else the test drives
// (a portal page making its own calls), so a 429 is waited out (its Retry-After) and the
// request sent again, for up to 30 s: these checks are not what is under test.
func (s *system) call(method, path, tenant string, body any) (int, map[string]any) {
	s.t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	tok, err := s.issuer.Mint(tenant, []string{api.ScopeRead, api.ScopeWrite, api.ScopeReplay}, time.Hour)
	if err != nil {
		s.t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		req, _ := http.NewRequest(method, s.api+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			s.t.Fatal(err)
		}
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			return resp.StatusCode, out
		}
		wait, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || wait < 1 {
			wait = 1
		}
		time.Sleep(time.Duration(wait) * time.Second)
	}
}

func (s *system) publish(event map[string]any) {
	s.t.Helper()
	b, _ := json.Marshal(event)
	if _, err := s.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(s.ingestQ), MessageBody: aws.String(string(b))}); err != nil {
		s.t.Fatal(err)
	}
}

// receiver verifies every delivery with the official Standard Webhooks library.
type receiver struct {
	*httptest.Server
	mu         sync.Mutex
	deliveries []delivery
}

type delivery struct {
	id, eventType string
	verified      bool
}

func newReceiver(t *testing.T, secret signing.Secret) *receiver {
	wh, err := standardwebhooks.NewWebhook(secret.Encode())
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var msg struct{ Type, Challenge string }
		_ = json.Unmarshal(body, &msg)
		if msg.Type == "webhook.challenge" {
			_ = json.NewEncoder(w).Encode(map[string]string{"challenge": msg.Challenge})
			return
		}
		rc.mu.Lock()
		rc.deliveries = append(rc.deliveries, delivery{id: r.Header.Get("webhook-id"), eventType: msg.Type, verified: wh.Verify(body, r.Header) == nil})
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.deliveries...)
}

func TestPublishDeliverReplay(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	secret, _ := signing.GenerateSecret()
	rc := newReceiver(t, secret)
	status, ep := s.call("POST", "/endpoints", "acme", map[string]any{"url": rc.URL + "/hook", "events": []string{"export.*"}, "secret": secret.Encode()})
	if status != http.StatusCreated {
		t.Fatalf("register: %d %v", status, ep)
	}
	epID := ep["endpoint_id"].(string)
	occurred := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	s.publish(map[string]any{"id": "evt_1", "tenant_id": "acme", "type": "export.done", "occurred_at": occurred.Format(time.RFC3339), "data": map[string]any{"rows": 3, "token": "payload-secret-value"}})
	s.publish(map[string]any{"id": "evt_2", "tenant_id": "acme", "type": "import.done", "occurred_at": occurred.Format(time.RFC3339), "data": map[string]any{}})
	s.publish(map[string]any{"id": "evt_3", "tenant_id": "globex", "type": "export.done", "occurred_at": occurred.Format(time.RFC3339), "data": map[string]any{}})
	s.drain()

	got := rc.got()
	if len(got) != 1 || got[0].id != "evt_1" || got[0].eventType != "export.done" || !got[0].verified {
		t.Fatalf("want exactly evt_1 delivered and verified by the official library, got %+v", got)
	}
	status, list := s.call("GET", "/endpoints", "acme", nil)
	if status != 200 || list["items"].([]any)[0].(map[string]any)["watermark"] == nil {
		t.Fatalf("the watermark must show the delivered event: %v", list)
	}
	status, log := s.call("GET", "/endpoints/"+epID+"/deliveries?status=succeeded", "acme", nil)
	if status != 200 || len(log["items"].([]any)) != 1 || log["items"].([]any)[0].(map[string]any)["event_id"] != "evt_1" {
		t.Fatalf("delivery log: %d %v", status, log)
	}
	if status, _ := s.call("GET", "/endpoints/"+epID+"/deliveries", "globex", nil); status != http.StatusNotFound {
		t.Fatalf("another tenant's delivery log: %d, want 404", status)
	}
	if status, body := s.call("GET", "/endpoints/"+epID+"/deliveries?status=lost", "acme", nil); status != 400 || body["field"] != "status" {
		t.Fatalf("bad status filter: %d %v", status, body)
	}

	// Replay from before the event: the same event again, with the same webhook-id.
	status, rp := s.call("POST", "/replay", "acme", map[string]any{"endpoint_id": epID, "from": occurred.Add(-time.Hour).Format(time.RFC3339)})
	if status != http.StatusAccepted {
		t.Fatalf("replay: %d %v", status, rp)
	}
	s.drain()
	got = rc.got()
	if len(got) != 2 || got[1].id != "evt_1" || !got[1].verified {
		t.Fatalf("replay must re-deliver evt_1 with the same webhook-id, got %+v", got)
	}
	status, r := s.call("GET", "/replays/"+rp["replay_id"].(string), "acme", nil)
	if status != 200 || r["status"] != "completed" || r["events_enqueued"] != 1.0 {
		t.Fatalf("replay state: %d %v", status, r)
	}

	// Logs carry ids, never secrets, tokens, signatures or payloads.
	logs := s.logs.String()
	for _, leak := range []string{strings.TrimPrefix(secret.Encode(), "whsec_"), "payload-secret-value", "v1,", "eyJ"} {
		if strings.Contains(logs, leak) {
			t.Fatalf("logs contain %q", leak)
		}
	}
	for _, want := range []string{`"event_id":"evt_1"`, `"endpoint_id":"` + epID + `"`, `"tenant_id":"acme"`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("logs lack %s", want)
		}
	}
}

func TestFailedHandshakeLogsNoSecrets(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "internal detail of the receiver")
	}))
	defer bad.Close()
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	status, body := s.call("POST", "/endpoints", "acme", map[string]any{"url": bad.URL, "events": []string{"export.done"}, "secret": secret})
	if status != 400 || body["reason"] != "handshake_failed" {
		t.Fatalf("handshake failure: %d %v", status, body)
	}
	logs := s.logs.String()
	for _, leak := range []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "internal detail of the receiver", "eyJ"} {
		if strings.Contains(logs, leak) || strings.Contains(body["message"].(string), leak) {
			t.Fatalf("logs or error contain %q", leak)
		}
	}
}

// TestDeliverKilledMidBatchLosesNothing: an invocation that dies after some POSTs (its
// process gone, nothing reported) deletes nothing, so every message comes back and is
// delivered; receivers see duplicates with the same webhook-id, never a gap.
func TestDeliverKilledMidBatchLosesNothing(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	secret, _ := signing.GenerateSecret()
	rc := newReceiver(t, secret)
	if status, body := s.call("POST", "/endpoints", "acme", map[string]any{"url": rc.URL, "events": []string{"*"}, "secret": secret.Encode()}); status != 201 {
		t.Fatalf("register: %d %v", status, body)
	}
	for _, id := range []string{"evt_a", "evt_b", "evt_c", "evt_d", "evt_e"} {
		s.publish(map[string]any{"id": id, "tenant_id": "acme", "type": "export.started", "occurred_at": time.Now().UTC().Format(time.RFC3339), "data": map[string]any{}})
	}
	for {
		n, err := s.ingest.Once(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	// The killed invocation: it delivers, then the process dies before reporting.
	real := s.deliver.Handler
	var handles []string
	s.deliver.Handler = func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		for _, r := range ev.Records {
			handles = append(handles, r.ReceiptHandle)
		}
		_, _ = real(ctx, ev)
		panic("instance killed")
	}
	if _, err := s.deliver.Once(context.Background()); err == nil {
		t.Fatal("the killed invocation must count as failed")
	}
	first := len(rc.got())
	if len(handles) != 5 || first == 0 {
		t.Fatalf("the killed batch held %d messages and delivered %d before dying", len(handles), first)
	}
	// Nothing was deleted: the messages come back once their visibility lapses (made to
	// happen now rather than after the queue's 180 s).
	for _, h := range handles {
		if _, err := s.sqs.ChangeMessageVisibility(context.Background(), &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(s.deliver.QueueURL), ReceiptHandle: aws.String(h), VisibilityTimeout: 0,
		}); err != nil {
			t.Fatalf("message of the killed batch is gone: %v", err)
		}
	}
	s.deliver.Handler = real
	s.drain()
	seen := map[string]bool{}
	for _, d := range rc.got() {
		if !d.verified {
			t.Fatalf("unverified delivery %+v", d)
		}
		seen[d.id] = true
	}
	if len(seen) != 5 {
		t.Fatalf("want every event delivered after the crash, got %v", seen)
	}
}

// metrics sums the named consumer's EMF output so far: counters add up, distributions
// count their values. Every line must be an EMF document of that consumer.
func (s *system) metrics(name string) map[string]float64 {
	s.t.Helper()
	sums := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(s.emf[name].String()), "\n") {
		if line == "" {
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(line), &doc); err != nil || doc["Function"] != name || doc["_aws"] == nil {
			s.t.Fatalf("%s wrote a line that is not its EMF document: %q (%v)", name, line, err)
		}
		for k, v := range doc {
			switch v := v.(type) {
			case float64:
				sums[k] += v
			case []any:
				sums[k] += float64(len(v))
			}
		}
	}
	return sums
}

// TestConsumersWriteMetricsAfterEachBatch: every consumer built by shared/wiring writes the
// metrics its batch recorded as soon as the batch is done, under its own Function name.
func TestConsumersWriteMetricsAfterEachBatch(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	secret, _ := signing.GenerateSecret()
	rc := newReceiver(t, secret)
	status, ep := s.call("POST", "/endpoints", "acme", map[string]any{"url": rc.URL, "events": []string{"*"}, "secret": secret.Encode()})
	if status != http.StatusCreated {
		t.Fatalf("register: %d %v", status, ep)
	}
	occurred := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	s.publish(map[string]any{"id": "evt_1", "tenant_id": "acme", "type": "export.done", "occurred_at": occurred.Format(time.RFC3339), "data": map[string]any{}})
	s.publish(map[string]any{"id": "evt_2", "tenant_id": "acme"}) // malformed: dead-lettered

	if n, err := s.ingest.Once(context.Background()); err != nil || n == 0 {
		t.Fatalf("ingest: %d messages, %v", n, err)
	}
	for { // SQS may split the two messages over two receives
		if m := s.metrics("ingest"); m[metrics.EventsIngested] == 1 && m[metrics.EventsRejected] == 1 {
			break
		}
		if n, err := s.ingest.Once(context.Background()); err != nil || n == 0 {
			t.Fatalf("after the ingest batches: metrics %v, want 1 event ingested and 1 rejected", s.metrics("ingest"))
		}
	}
	s.drain()
	if m := s.metrics("deliver"); m[metrics.DeliveriesSucceeded] != 1 || m[metrics.DeliveryLatency] != 1 {
		t.Fatalf("deliver metrics %v, want 1 delivery succeeded and its latency", m)
	}

	status, rp := s.call("POST", "/replay", "acme", map[string]any{"endpoint_id": ep["endpoint_id"], "from": occurred.Add(-time.Hour).Format(time.RFC3339)})
	if status != http.StatusAccepted {
		t.Fatalf("replay: %d %v", status, rp)
	}
	s.drain()
	if m := s.metrics("replay-worker"); m[metrics.ReplayEventsEnqueued] != 1 {
		t.Fatalf("replay worker metrics %v, want 1 event enqueued", m)
	}
	if m := s.metrics("deliver"); m[metrics.DeliveriesSucceeded] != 2 {
		t.Fatalf("deliver metrics %v, want 2 deliveries succeeded", m)
	}
}
