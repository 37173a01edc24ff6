package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	deliverypkg "github.com/datajetty/webhooks/shared/delivery"
	"github.com/datajetty/webhooks/shared/dev/testenv"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/signing"
	"github.com/datajetty/webhooks/shared/store"
)

// deliveryLog reads an endpoint's delivery log straight from the table (the API answers
// 404 for a deleted endpoint's log, which is kept until it expires).
func (s *system) deliveryLog(tenant, endpointID string) []domain.Attempt {
	s.t.Helper()
	log := store.NewDeliveries(dynamodb.NewFromConfig(testenv.AWSConfig(s.t)), s.env["WEBHOOKS_DELIVERIES_TABLE"])
	items, _, err := log.List(context.Background(), tenant, endpointID, "", 100, "")
	if err != nil {
		s.t.Fatal(err)
	}
	return items
}

// TestDeletedEndpointReceivesNothing: jobs already queued for an endpoint that is then
// deleted end as skipped, without a POST, each with a log record saying why; the URL can
// be registered again at once and receives what comes next.
func TestDeletedEndpointReceivesNothing(t *testing.T) {
	t.Parallel()
	s := newSystem(t)
	secret, _ := signing.GenerateSecret()
	rc := newReceiver(t, secret)
	status, ep := s.call("POST", "/endpoints", "acme", map[string]any{"url": rc.URL + "/hook", "events": []string{"*"}, "secret": secret.Encode()})
	if status != http.StatusCreated {
		t.Fatalf("register: %d %v", status, ep)
	}
	epID := ep["endpoint_id"].(string)
	at := time.Now().Add(-time.Minute).UTC()
	for _, id := range []string{"evt_d1", "evt_d2", "evt_d3"} {
		s.publish(map[string]any{"id": id, "tenant_id": "acme", "type": "export.done", "occurred_at": at.Format(time.RFC3339Nano), "data": map[string]any{}})
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
	if status, body := s.call("DELETE", "/endpoints/"+epID, "acme", nil); status != http.StatusNoContent {
		t.Fatalf("delete: %d %v", status, body)
	}
	s.drain()
	if got := rc.got(); len(got) != 0 {
		t.Fatalf("a deleted endpoint received %d deliveries: %+v", len(got), got)
	}
	log := s.deliveryLog("acme", epID)
	if len(log) != 3 {
		t.Fatalf("want a log record for each of the 3 queued jobs, got %+v", log)
	}
	for _, a := range log {
		if a.Status != domain.DeliverySkipped || a.ErrorClass != "deleted" || a.HTTPStatus != 0 {
			t.Fatalf("record %+v, want skipped because the endpoint was deleted", a)
		}
	}

	status, again := s.call("POST", "/endpoints", "acme", map[string]any{"url": rc.URL + "/hook", "events": []string{"*"}, "secret": secret.Encode()})
	if status != http.StatusCreated || again["endpoint_id"] == epID {
		t.Fatalf("register the freed url: %d %v", status, again)
	}
	s.publish(map[string]any{"id": "evt_d4", "tenant_id": "acme", "type": "export.done", "occurred_at": time.Now().UTC().Format(time.RFC3339Nano), "data": map[string]any{}})
	s.drain()
	if got := rc.got(); len(got) != 1 || got[0].id != "evt_d4" || !got[0].verified {
		t.Fatalf("the new endpoint must receive the next event, got %+v", got)
	}
}

// TestPausedEndpointSkipsAndResumes: events that arrive while an endpoint is paused are
// acknowledged without a POST, each recorded skipped (disabled); the watermark stays; once
// resumed, new events are delivered again.
func TestPausedEndpointSkipsAndResumes(t *testing.T) {
	t.Parallel()
	// The deliver function's 30 s endpoint cache would hide the resume from the next
	// delivery; the scenario needs to see it at once.
	s := newSystem(t, func(o *deliverypkg.Options) { o.CacheTTL = 0 })
	secret, _ := signing.GenerateSecret()
	rc := newReceiver(t, secret)
	_, ep := s.call("POST", "/endpoints", "acme", map[string]any{"url": rc.URL + "/hook", "events": []string{"export.*"}, "secret": secret.Encode()})
	epID := ep["endpoint_id"].(string)
	first := time.Now().Add(-3 * time.Minute).UTC()
	s.publish(map[string]any{"id": "evt_p1", "tenant_id": "acme", "type": "export.done", "occurred_at": first.Format(time.RFC3339Nano), "data": map[string]any{}})
	s.drain()
	_, before := s.call("GET", "/endpoints/"+epID, "acme", nil)

	if status, body := s.call("POST", "/endpoints/"+epID+"/disable", "acme", nil); status != http.StatusOK || body["status"] != "disabled" {
		t.Fatalf("pause: %d %v", status, body)
	}
	for i, id := range []string{"evt_p2", "evt_p3"} {
		s.publish(map[string]any{"id": id, "tenant_id": "acme", "type": "export.done", "occurred_at": first.Add(time.Duration(i+1) * time.Minute).Format(time.RFC3339Nano), "data": map[string]any{}})
	}
	s.drain()
	if got := rc.got(); len(got) != 1 {
		t.Fatalf("a paused endpoint received %d deliveries, want only the one before the pause: %+v", len(got), got)
	}
	status, log := s.call("GET", "/endpoints/"+epID+"/deliveries?status=skipped", "acme", nil)
	items, _ := log["items"].([]any)
	if status != http.StatusOK || len(items) != 2 {
		t.Fatalf("skipped deliveries: %d %v", status, log)
	}
	for _, it := range items {
		if a := it.(map[string]any); a["error_class"] != "disabled" || a["http_status"] != nil {
			t.Fatalf("skipped record %v, want error_class disabled and no HTTP status", a)
		}
	}
	_, paused := s.call("GET", "/endpoints/"+epID, "acme", nil)
	if paused["watermark"] != before["watermark"] || paused["watermark"] == nil {
		t.Fatalf("the watermark moved while paused: %v → %v", before["watermark"], paused["watermark"])
	}

	if status, body := s.call("POST", "/endpoints/"+epID+"/enable", "acme", nil); status != http.StatusOK || body["status"] != "active" {
		t.Fatalf("resume: %d %v", status, body)
	}
	s.publish(map[string]any{"id": "evt_p4", "tenant_id": "acme", "type": "export.done", "occurred_at": time.Now().UTC().Format(time.RFC3339Nano), "data": map[string]any{}})
	s.drain()
	if got := rc.got(); len(got) != 2 || got[1].id != "evt_p4" || !got[1].verified {
		t.Fatalf("after resuming, the next event must arrive: %+v", got)
	}
}

// TestResendDelivery: a resend queues the stored event again with the same webhook-id and a
// fresh attempt series, also when the endpoint's patterns no longer match it; events not in
// the endpoint's log, another tenant's endpoint and a paused endpoint are refused.
func TestResendDelivery(t *testing.T) {
	t.Parallel()
	s := newSystem(t, func(o *deliverypkg.Options) { o.CacheTTL = 0 })
	secret, _ := signing.GenerateSecret()
	rc := newReceiver(t, secret)
	_, ep := s.call("POST", "/endpoints", "acme", map[string]any{"url": rc.URL + "/hook", "events": []string{"export.*"}, "secret": secret.Encode()})
	epID := ep["endpoint_id"].(string)
	_, other := s.call("POST", "/endpoints", "acme", map[string]any{"url": rc.URL + "/other", "events": []string{"import.*"}, "secret": secret.Encode()})
	at := time.Now().Add(-time.Minute).UTC()
	s.publish(map[string]any{"id": "evt_r/1", "tenant_id": "acme", "type": "export.done", "occurred_at": at.Format(time.RFC3339Nano), "data": map[string]any{"n": 1}})
	s.publish(map[string]any{"id": "evt_r2", "tenant_id": "acme", "type": "import.done", "occurred_at": at.Format(time.RFC3339Nano), "data": map[string]any{"n": 2}})
	s.drain()
	if got := rc.got(); len(got) != 2 {
		t.Fatalf("first deliveries: %+v", got)
	}

	// The endpoint stops subscribing to export.*: a resend still sends the event. The id
	// holds a "/", escaped in the path.
	if status, body := s.call("POST", "/endpoints", "acme", map[string]any{"endpoint_id": epID, "url": rc.URL + "/hook", "events": []string{"import.failed"}}); status != http.StatusOK {
		t.Fatalf("update: %d %v", status, body)
	}
	status, body := s.call("POST", "/endpoints/"+epID+"/deliveries/evt_r%2F1/resend", "acme", nil)
	if status != http.StatusAccepted || body["status"] != "queued" || body["event_id"] != "evt_r/1" || body["endpoint_id"] != epID {
		t.Fatalf("resend: %d %v", status, body)
	}
	s.drain()
	got := rc.got()
	if len(got) != 3 || got[2].id != "evt_r/1" || got[2].eventType != "export.done" || !got[2].verified {
		t.Fatalf("the resend must deliver evt_r/1 again with its webhook-id: %+v", got)
	}
	_, log := s.call("GET", "/endpoints/"+epID+"/deliveries?limit=1", "acme", nil)
	latest := log["items"].([]any)[0].(map[string]any)
	if latest["event_id"] != "evt_r/1" || latest["attempt"] != 1.0 || latest["resend"] != true || latest["status"] != "succeeded" {
		t.Fatalf("the resend's attempt in the log: %v, want attempt 1 of a fresh series, marked resend", latest)
	}

	for name, c := range map[string]struct {
		tenant, path string
		status       int
	}{
		"unknown event":             {"acme", "/endpoints/" + epID + "/deliveries/evt_nope/resend", http.StatusNotFound},
		"another endpoint's event":  {"acme", "/endpoints/" + epID + "/deliveries/evt_r2/resend", http.StatusNotFound},
		"another tenant's endpoint": {"globex", "/endpoints/" + other["endpoint_id"].(string) + "/deliveries/evt_r2/resend", http.StatusNotFound},
	} {
		if status, body := s.call("POST", c.path, c.tenant, nil); status != c.status {
			t.Errorf("%s: %d %v, want %d", name, status, body, c.status)
		}
	}
	s.call("POST", "/endpoints/"+epID+"/disable", "acme", nil)
	if status, body := s.call("POST", "/endpoints/"+epID+"/deliveries/evt_r%2F1/resend", "acme", nil); status != http.StatusConflict || body["reason"] != "endpoint_disabled" {
		t.Errorf("resend to a paused endpoint: %d %v, want 409 endpoint_disabled", status, body)
	}
	s.drain()
	if n := len(rc.got()); n != 3 {
		t.Fatalf("refused resends delivered something: %d deliveries", n)
	}
}
