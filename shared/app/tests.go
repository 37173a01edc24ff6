package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/eventtypes"
	"github.com/datajetty/webhooks/shared/signing"
)

// TestExcerptBytes caps the part of a receiver's answer to a test that is kept and shown.
const TestExcerptBytes = 1 << 10

// TestSender makes one signed POST exactly as a delivery does (shared/sender.Sender),
// keeping the first keep bytes of the response body.
type TestSender interface {
	Send(ctx context.Context, url, msgID string, body []byte, secrets []signing.Secret, now time.Time, keep int) domain.PostResult
}

// AttemptRecorder stores delivery-log records (shared/store.Deliveries).
type AttemptRecorder interface {
	Record(ctx context.Context, attempts []domain.Attempt) error
}

// Tests sends test events to tenants' endpoints.
type Tests struct {
	Store   EndpointStore
	Secrets SecretBox
	Sender  TestSender
	Log     AttemptRecorder
	// EventTypes is the catalog a test event's type must be declared in (nil: built-in).
	EventTypes *eventtypes.Catalog
	Now        func() time.Time
}

// TestInput is a test request: the event type ("" = webhook.test) and its data (empty =
// the type's example, or for webhook.test a short message naming the endpoint).
type TestInput struct {
	Type string
	Data json.RawMessage
}

// TestOutcome is the test send as it happened and as it was recorded.
type TestOutcome struct {
	Attempt   domain.Attempt
	Excerpt   []byte
	Truncated bool
	// RecordErr is set when the attempt could not be written to the delivery log; the
	// send itself happened.
	RecordErr error
}

// testMessage is the data of the default test event.
const testMessage = "This is a test event from DataJetty Webhooks."

// Send makes one signed attempt of a test event to one of the tenant's endpoints, now, with
// no retry, and records it in the endpoint's delivery log marked as a test. It is allowed
// whatever the endpoint's status, so a paused endpoint's receiver can be checked before it
// is resumed. A test changes nothing about the endpoint: no watermark, no failure count,
// no notification.
func (s *Tests) Send(ctx context.Context, tenantID, endpointID string, in TestInput) (TestOutcome, error) {
	if !domain.ValidID(domain.EndpointIDPrefix, endpointID) {
		return TestOutcome{}, domain.NotFound("endpoint %s not found", endpointID)
	}
	typ := in.Type
	if typ == "" {
		typ = domain.TypeTest
	}
	catalog := s.EventTypes
	if catalog == nil {
		catalog = eventtypes.Builtin()
	}
	declared, ok := catalog.Lookup(typ)
	if !ok {
		return TestOutcome{}, domain.Invalid("type", "type %q is not a declared event type; GET /event-types lists them", typ)
	}
	data := bytes.TrimSpace(in.Data)
	if len(data) > 0 && (string(data) == "null" || !json.Valid(data)) {
		return TestOutcome{}, domain.Invalid("data", "data must be a JSON value other than null")
	}
	ep, err := s.Store.GetEndpoint(ctx, tenantID, endpointID)
	if err != nil {
		return TestOutcome{}, fmt.Errorf("load endpoint %s: %w", endpointID, err)
	}
	if len(data) == 0 {
		data = declared.Example
		if typ == domain.TypeTest {
			data, _ = json.Marshal(map[string]string{"message": testMessage, "endpoint_id": ep.ID})
		}
	}
	now := s.Now().UTC()
	e := domain.Event{ID: domain.NewID("test_"), TenantID: tenantID, Type: typ, OccurredAt: now, Data: data}
	body, err := e.Payload()
	if err != nil {
		return TestOutcome{}, domain.Invalid("data", "data cannot be sent: %v", err)
	}
	var secrets []signing.Secret
	for _, ct := range ep.SigningCiphertexts(now) {
		sec, err := s.Secrets.Open(ctx, ep.TenantID, ep.ID, ct)
		if err != nil {
			return TestOutcome{}, fmt.Errorf("open signing secret of %s: %w", ep.ID, err)
		}
		secrets = append(secrets, sec)
	}
	sent := s.Sender.Send(ctx, ep.URL, e.ID, body, secrets, now, TestExcerptBytes)
	a := domain.Attempt{
		TenantID: tenantID, EndpointID: ep.ID, EventID: e.ID, EventType: e.Type, OccurredAt: now,
		Number: 1, Status: domain.DeliverySucceeded, HTTPStatus: sent.Status, ErrorClass: sent.Class,
		Latency: sent.Latency, AttemptedAt: now, Test: true,
	}
	if sent.Class != "" {
		a.Status = domain.DeliveryDead // no retry: the test failed for good
	}
	out := TestOutcome{Attempt: a, Excerpt: sent.Excerpt, Truncated: sent.Truncated}
	if err := s.Log.Record(ctx, []domain.Attempt{a}); err != nil {
		out.RecordErr = fmt.Errorf("record test send %s: %w", e.ID, err)
	}
	return out, nil
}
