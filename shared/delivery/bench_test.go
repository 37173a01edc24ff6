package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/datajetty/webhooks/shared/dev/localsqs"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/queue"
	"github.com/datajetty/webhooks/shared/signing"
	"github.com/datajetty/webhooks/shared/ssrf"
)

// In-memory ports, for the benchmark only: it measures the handler's own cost against a
// bare sign-and-POST loop, so AWS latency is deliberately left out.

type memEndpoints struct{ ep domain.Endpoint }

func (m memEndpoints) GetEndpoint(context.Context, string, string) (domain.Endpoint, error) {
	return m.ep, nil
}

// memSecrets "decrypts" a ciphertext that is the whsec_ string itself.
type memSecrets struct{}

func (memSecrets) Open(_ context.Context, _, _ string, ct []byte) (signing.Secret, error) {
	return signing.ParseSecret(string(ct))
}

type memLog struct{ n atomic.Int64 }

func (m *memLog) Record(_ context.Context, as []domain.Attempt) error {
	m.n.Add(int64(len(as)))
	return nil
}

type memState struct{}

func (memState) AdvanceWatermark(context.Context, string, string, time.Time) (*domain.Endpoint, error) {
	return nil, nil
}
func (memState) Disable(context.Context, string, string, domain.DisabledReason, string, time.Time) (domain.Endpoint, bool, error) {
	return domain.Endpoint{}, true, nil
}
func (memState) RecordExhausted(context.Context, string, string, int, time.Time) (domain.Exhausted, error) {
	return domain.Exhausted{}, nil
}

type memVisibility struct{}

func (memVisibility) ChangeVisibility(context.Context, string, time.Duration) error { return nil }

// BenchmarkDeliver delivers batches of 10 events through Handler.Handle to a local
// receiver, and in the same iterations signs and POSTs the same 10 payloads directly with
// the same client and the same concurrency (the baseline). Alternating the two in one loop
// exposes both to the same machine noise. Read:
//
//	handler-ns/delivery   time per delivery through the handler
//	baseline-ns/delivery  time per delivery of the bare sign-and-POST loop
//	ratio                 baseline / handler time = handler throughput relative to the
//	                      baseline (1.0 = no overhead; the goal is >= 0.9)
//
// ns/op is the sum of one handler batch and one baseline batch. Two receivers: one that
// answers at once, where the handler's CPU cost (reading the job's message attributes, one
// JSON log line, the batch bookkeeping; the payload is the message body, rendered by the
// sender) competes with the receiver and the client for the same cores and is fully
// visible; and one that takes 1 ms to answer, still far faster than a real endpoint across
// the internet.
func BenchmarkDeliver(b *testing.B) {
	b.Run("receiver=instant", func(b *testing.B) { benchmarkDeliver(b, 0) })
	b.Run("receiver=1ms", func(b *testing.B) { benchmarkDeliver(b, time.Millisecond) })
}

func benchmarkDeliver(b *testing.B, receiverDelay time.Duration) {
	const batchSize = 10
	ctx := context.Background()
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if receiverDelay > 0 {
			time.Sleep(receiverDelay)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rc.Close()

	secret, err := signing.GenerateSecret()
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	ep := domain.Endpoint{
		TenantID: "tenant-a", ID: domain.NewID(domain.EndpointIDPrefix), URL: rc.URL, Events: []string{"*"},
		Status: domain.StatusActive, Version: 1, CreatedAt: now, UpdatedAt: now,
		SecretCiphertext: []byte(secret.Encode()),
	}
	client := ssrf.NewClient(ssrf.Policy{AllowPrivate: true}, 15*time.Second)
	log := &memLog{}
	opts := DefaultOptions()
	h, err := New(Deps{
		Endpoints: memEndpoints{ep}, Secrets: memSecrets{}, Log: log, State: memState{},
		Visibility: memVisibility{}, Client: client,
		// Production logs one JSON line per attempt; formatting them is part of the cost.
		Logger:  slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Options: opts,
	})
	if err != nil {
		b.Fatal(err)
	}

	var ev events.SQSEvent
	payloads := make([][]byte, batchSize)
	ids := make([]string, batchSize)
	data := json.RawMessage(`{"export_id":"exp_123","rows":1042,"url":"https://files.example.com/exports/exp_123.csv"}`)
	for i := range batchSize {
		j := domain.DeliveryJob{TenantID: ep.TenantID, EndpointID: ep.ID, Event: domain.Event{
			ID: fmt.Sprintf("evt_bench_%02d", i), TenantID: ep.TenantID, Type: "export.done",
			OccurredAt: now.UTC(), Data: data,
		}}
		// The message as the sender writes it (body = payload, routing in attributes) and
		// Lambda hands it over.
		body, attrs, err := queue.EncodeDeliveryJob(j)
		if err != nil {
			b.Fatal(err)
		}
		ev.Records = append(ev.Records, localsqs.NewEvent([]sqstypes.Message{{
			MessageId: aws.String(fmt.Sprintf("m-%d", i)), ReceiptHandle: aws.String(fmt.Sprintf("rh-%d", i)), Body: &body,
			Attributes: map[string]string{"ApproximateReceiveCount": "1"}, MessageAttributes: attrs,
		}}, "arn:aws:sqs:us-east-1:123456789012:DeliveryQueue", "").Records...)
		if payloads[i], err = j.Event.Payload(); err != nil {
			b.Fatal(err)
		}
		ids[i] = j.Event.ID
	}

	post := func(i int) error {
		ts := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, rc.URL, bytes.NewReader(payloads[i]))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", opts.UserAgent)
		signing.SetHeaders(req.Header, ids[i], ts, payloads[i], secret)
		resp, err := client.Do(req)
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
	baseline := func() {
		var wg sync.WaitGroup
		for i := range batchSize {
			wg.Go(func() {
				if err := post(i); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}

	// Warm both paths (connections, the endpoint cache) before measuring.
	baseline()
	if _, err := h.Handle(ctx, ev); err != nil {
		b.Fatal(err)
	}

	var handlerTime, baselineTime time.Duration
	iterations := 0
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		resp, err := h.Handle(ctx, ev)
		handlerTime += time.Since(start)
		if err != nil || len(resp.BatchItemFailures) != 0 {
			b.Fatalf("Handle: %v, %d failures", err, len(resp.BatchItemFailures))
		}
		start = time.Now()
		baseline()
		baselineTime += time.Since(start)
		iterations++
	}
	deliveries := float64(iterations * batchSize)
	b.ReportMetric(float64(handlerTime.Nanoseconds())/deliveries, "handler-ns/delivery")
	b.ReportMetric(float64(baselineTime.Nanoseconds())/deliveries, "baseline-ns/delivery")
	b.ReportMetric(float64(baselineTime)/float64(handlerTime), "ratio")
	if got := log.n.Load(); got != int64((iterations+1)*batchSize) {
		b.Errorf("recorded %d attempts, want %d", got, (iterations+1)*batchSize)
	}
}
