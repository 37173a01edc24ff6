package delivery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/config"
	"github.com/datajetty/webhooks/shared/delivery"
	"github.com/datajetty/webhooks/shared/dev/localsqs"
	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/queue"
	"github.com/datajetty/webhooks/shared/signing"
	"github.com/datajetty/webhooks/shared/ssrf"
	"github.com/datajetty/webhooks/shared/store"
	"github.com/datajetty/webhooks/shared/wiring/coldstart"
	"github.com/datajetty/webhooks/shared/wiring/withkms"
	"github.com/datajetty/webhooks/shared/wiring/workerfn"
)

// BenchmarkDeliver delivers batches of 10 events through the deliver function's handler
// built exactly as its cold start builds it (workerfn.Function with withkms.Services: the
// Lambda logger and the EMF metrics writing to a file descriptor as on Lambda, the real
// attempt-log, endpoint, watermark and KMS adapters against the emulator), and in the same
// iterations signs and POSTs the same 10 payloads directly with the same kind of client and
// the same concurrency (the baseline). Alternating the two in one loop exposes both to the
// same machine noise. Read:
//
//	handler-ns/delivery   time per delivery through the handler
//	baseline-ns/delivery  time per delivery of the bare sign-and-POST loop
//	ratio                 baseline / handler time (1.0 = no overhead)
//
// Sub-benchmarks:
//
//	receiver=instant|1ms|50ms  how long the receiver takes to answer
//	cache=hit                  the endpoint is in the handler's cache (a warm instance)
//	cache=miss                 each batch goes to an endpoint the instance has not loaded:
//	                           its GetItem and KMS Decrypt precede the POSTs
//	aws=emulator               AWS calls go to the emulator on loopback, which handles
//	                           DynamoDB requests one at a time, each in several
//	                           milliseconds of Python
//	aws=2ms|5ms                every AWS call of the handler takes 2 or 5 ms, about what a
//	                           call from Lambda to DynamoDB or KMS in its region takes, and
//	                           they run concurrently: a stand-in (standIn) answers the
//	                           batch's writes, and a cache miss's GetItem and Decrypt with
//	                           the emulator's answers recorded while the timer was stopped;
//	                           this shows the handler's own structure, what runs together
//	                           and what follows what, which the serializing emulator hides
//	emulator-calls/batch       (aws=2ms|5ms) the handler's calls that still reached the
//	                           emulator and its latency, per batch: 0 when the stand-in
//	                           answered all
//
// The handler's writes after the POSTs (the attempt log's BatchWriteItem and the endpoint's
// watermark UpdateItem, together) are in the handler's time, so the instant receiver shows
// them at their full weight. Set AWS_LAMBDA_LOG_FORMAT=JSON (make bench does) for the JSON
// log lines the functions write.
func BenchmarkDeliver(b *testing.B) {
	for _, rtt := range []time.Duration{0, 2 * time.Millisecond, 5 * time.Millisecond} {
		aws := "emulator"
		if rtt > 0 {
			aws = rtt.String()
		}
		b.Run("aws="+aws, func(b *testing.B) {
			env := newDeliverBench(b, rtt)
			for _, delay := range []time.Duration{0, time.Millisecond, 50 * time.Millisecond} {
				receiver := "instant"
				if delay > 0 {
					receiver = delay.String()
				}
				for _, miss := range []bool{false, true} {
					cache := "hit"
					if miss {
						cache = "miss"
					}
					b.Run("receiver="+receiver+"/cache="+cache, func(b *testing.B) { env.run(b, delay, miss) })
				}
			}
		})
	}
}

// standIn is a DynamoDB and KMS whose calls take rtt and run concurrently, for the
// handler's requests. It answers the batch's writes (BatchWriteItem, UpdateItem) as
// DynamoDB does when they succeed (the handler ignores what a successful write returns);
// it answers a GetItem or KMS Decrypt it has seen before with the emulator's answer to it,
// which prime records while the benchmark's timer is stopped (the same request from the
// same adapters: a cache miss's endpoint read and decryption); anything else goes to the
// emulator after rtt.
type standIn struct {
	emulator string
	rtt      time.Duration
	client   *http.Client
	// forwarded counts the requests that went to the emulator.
	forwarded atomic.Int64

	mu      sync.Mutex
	answers map[string]answer // by X-Amz-Target and the request's JSON, keys sorted
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func newStandIn(b *testing.B, emulator string, rtt time.Duration) (*standIn, string) {
	s := &standIn{emulator: emulator, rtt: rtt, client: &http.Client{}, answers: map[string]answer{}}
	srv := httptest.NewServer(s)
	b.Cleanup(srv.Close)
	return s, srv.URL
}

func (s *standIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	// The writes are answered without looking at them: the stand-in's own work (canonical
	// JSON of a 20-item batch) would otherwise count as the handler's time.
	var (
		a    answer
		seen bool
		key  string
	)
	switch target {
	case "DynamoDB_20120810.BatchWriteItem":
		a, seen = answer{http.StatusOK, http.Header{"Content-Type": {"application/x-amz-json-1.0"}}, []byte(`{"UnprocessedItems":{}}`)}, true
	case "DynamoDB_20120810.UpdateItem":
		a, seen = answer{http.StatusOK, http.Header{"Content-Type": {"application/x-amz-json-1.0"}}, []byte(`{}`)}, true
	default:
		key = target + " " + canonicalJSON(body)
		s.mu.Lock()
		a, seen = s.answers[key]
		s.mu.Unlock()
	}
	switch {
	case seen:
	default:
		s.forwarded.Add(1)
		if a, err = s.forward(r, body); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if a.status == http.StatusOK && (target == "DynamoDB_20120810.GetItem" || target == "TrentService.Decrypt") {
			s.mu.Lock()
			s.answers[key] = a
			s.mu.Unlock()
		}
	}
	time.Sleep(s.rtt)
	for k, v := range a.header {
		if k != "Content-Length" && k != "Date" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

// forward sends r (its body already read) to the emulator and returns its answer.
func (s *standIn) forward(r *http.Request, body []byte) (answer, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, s.emulator+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header = r.Header.Clone()
	resp, err := s.client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, out}, err
}

// canonicalJSON is body with its object keys sorted (the SDK writes maps in any order),
// or body itself if it is not JSON.
func canonicalJSON(body []byte) string {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return string(body)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return string(body)
	}
	return string(out)
}

// deliverBench is one provisioned stack and the deliver handler built on it.
type deliverBench struct {
	ctx       context.Context
	handle    workerfn.SQSHandler
	endpoints *store.Endpoints
	box       app.SecretBox
	// primeEndpoints and primeBox read and decrypt a new endpoint through the stand-in, as
	// the handler's cache miss will (nil against the emulator alone).
	primeEndpoints *store.Endpoints
	primeBox       app.SecretBox
	standIn        *standIn
	secret         signing.Secret
	client         *http.Client
}

func newDeliverBench(b *testing.B, rtt time.Duration) *deliverBench {
	ctx := context.Background()
	stack := testenv.Stack(b, nil)
	awsCfg := testenv.AWSConfig(b)
	var si *standIn
	if rtt > 0 {
		var u string
		si, u = newStandIn(b, *awsCfg.BaseEndpoint, rtt)
		awsCfg.BaseEndpoint = aws.String(u)
	}
	env := map[string]string{}
	for k, v := range stack.Env {
		env[k] = v
	}
	env[config.AllowPrivateTargets.Name] = "true" // the receiver is on loopback
	cfg, err := config.FromMap(env)
	if err != nil {
		b.Fatal(err)
	}
	// What Lambda gives the function: stdout, where the logger and the metrics write. Here a
	// file too (/dev/null), so each line costs its write as it does there.
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { devNull.Close() })
	stdout := os.Stdout
	os.Stdout = devNull
	fn := workerfn.Function("deliver", workerfn.Deliver, withkms.Services)
	handle, err := fn.Build(ctx, coldstart.Boot{Config: cfg, AWS: awsCfg, Logger: lambdacontext.NewLogger()})
	os.Stdout = stdout
	if err != nil {
		b.Fatal(err)
	}
	secret, err := signing.GenerateSecret()
	if err != nil {
		b.Fatal(err)
	}
	d := &deliverBench{
		ctx: ctx, handle: handle,
		endpoints: store.NewEndpoints(dynamodb.NewFromConfig(testenv.AWSConfig(b)), cfg.EndpointsTable),
		box:       withkms.Services.SecretBox(testenv.AWSConfig(b), cfg.SecretsKeyID),
		secret:    secret,
		client:    ssrf.NewClient(ssrf.Policy{AllowPrivate: true}, delivery.DefaultOptions().AttemptTimeout),
	}
	if si != nil {
		d.standIn = si
		d.primeEndpoints = store.NewEndpoints(dynamodb.NewFromConfig(awsCfg), cfg.EndpointsTable)
		d.primeBox = withkms.Services.SecretBox(awsCfg, cfg.SecretsKeyID)
	}
	return d
}

// endpoint registers an active endpoint for url, its secret sealed with KMS, as the API
// does.
func (d *deliverBench) endpoint(b *testing.B, url string) domain.Endpoint {
	now := time.Now().UTC()
	ep := domain.Endpoint{TenantID: "tenant-a", ID: domain.NewID(domain.EndpointIDPrefix), URL: url, Events: []string{"*"},
		Status: domain.StatusActive, Version: 1, CreatedAt: now, UpdatedAt: now}
	ct, err := d.box.Seal(d.ctx, ep.TenantID, ep.ID, d.secret)
	if err != nil {
		b.Fatal(err)
	}
	ep.SecretCiphertext = ct
	if err := d.endpoints.CreateEndpoint(d.ctx, ep); err != nil {
		b.Fatal(err)
	}
	if d.primeEndpoints != nil {
		if _, err := d.primeEndpoints.GetEndpoint(d.ctx, ep.TenantID, ep.ID); err != nil {
			b.Fatal(err)
		}
		if _, err := d.primeBox.Open(d.ctx, ep.TenantID, ep.ID, ct); err != nil {
			b.Fatal(err)
		}
	}
	return ep
}

const benchBatch = 10

// batch is 10 DeliveryQueue messages for ep as Lambda hands them over, and their payloads.
func batch(b *testing.B, ep domain.Endpoint, n int) (events.SQSEvent, [][]byte, []string) {
	var ev events.SQSEvent
	var payloads [][]byte
	var ids []string
	for i := range benchBatch {
		j := domain.DeliveryJob{TenantID: ep.TenantID, EndpointID: ep.ID, Event: domain.Event{
			ID: fmt.Sprintf("evt_bench_%d_%02d", n, i), TenantID: ep.TenantID, Type: "export.done", OccurredAt: time.Now().UTC(),
			Data: []byte(`{"export_id":"exp_123","rows":1042,"url":"https://files.example.com/exports/exp_123.csv"}`),
		}}
		body, attrs, err := queue.EncodeDeliveryJob(j)
		if err != nil {
			b.Fatal(err)
		}
		ev.Records = append(ev.Records, localsqs.NewEvent([]sqstypes.Message{{
			MessageId: aws.String(fmt.Sprintf("m-%d-%d", n, i)), ReceiptHandle: aws.String(fmt.Sprintf("rh-%d-%d", n, i)), Body: &body,
			Attributes: map[string]string{"ApproximateReceiveCount": "1"}, MessageAttributes: attrs,
		}}, "arn:aws:sqs:us-east-1:123456789012:DeliveryQueue", "us-east-1").Records...)
		payload, err := j.Event.Payload()
		if err != nil {
			b.Fatal(err)
		}
		payloads, ids = append(payloads, payload), append(ids, j.Event.ID)
	}
	return ev, payloads, ids
}

func (d *deliverBench) run(b *testing.B, receiverDelay time.Duration, miss bool) {
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if receiverDelay > 0 {
			time.Sleep(receiverDelay)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rc.Close()
	hit := d.endpoint(b, rc.URL+"/hooks/hit")

	opts := delivery.DefaultOptions()
	post := func(payload []byte, id string) error {
		req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, rc.URL+"/hooks", bytes.NewReader(payload))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", domain.UserAgent)
		signing.SetHeaders(req.Header, id, time.Now(), payload, d.secret)
		resp, err := d.client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, opts.MaxResponseBytes))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	baseline := func(payloads [][]byte, ids []string) {
		var wg sync.WaitGroup
		for i := range payloads {
			wg.Go(func() {
				if err := post(payloads[i], ids[i]); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	deliver := func(ev events.SQSEvent) {
		resp, err := d.handle(d.ctx, ev)
		if err != nil || len(resp.BatchItemFailures) != 0 {
			b.Fatalf("handler: %v, %d failures", err, len(resp.BatchItemFailures))
		}
	}

	// Warm both paths (connections; the endpoint in the cache for cache=hit).
	ev, payloads, ids := batch(b, hit, -1)
	baseline(payloads, ids)
	deliver(ev)

	var handlerTime, baselineTime time.Duration
	var emulatorCalls int64 // the handler's calls the stand-in sent on to the emulator
	n := 0
	for b.Loop() {
		target := hit
		if miss {
			b.StopTimer()
			target = d.endpoint(b, fmt.Sprintf("%s/hooks/%d", rc.URL, n))
			b.StartTimer()
		}
		ev, payloads, ids := batch(b, target, n)
		forwarded := d.forwarded()
		start := time.Now()
		deliver(ev)
		handlerTime += time.Since(start)
		emulatorCalls += d.forwarded() - forwarded
		start = time.Now()
		baseline(payloads, ids)
		baselineTime += time.Since(start)
		n++
	}
	deliveries := float64(n * benchBatch)
	b.ReportMetric(float64(handlerTime.Nanoseconds())/deliveries, "handler-ns/delivery")
	b.ReportMetric(float64(baselineTime.Nanoseconds())/deliveries, "baseline-ns/delivery")
	b.ReportMetric(float64(baselineTime)/float64(handlerTime), "ratio")
	if d.standIn != nil {
		b.ReportMetric(float64(emulatorCalls)/float64(n), "emulator-calls/batch")
	}
}

// forwarded is how many requests the stand-in has sent on to the emulator (0 without one).
func (d *deliverBench) forwarded() int64 {
	if d.standIn == nil {
		return 0
	}
	return d.standIn.forwarded.Load()
}
