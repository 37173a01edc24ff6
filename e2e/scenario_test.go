package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	deliverypkg "github.com/datajetty/webhooks/shared/delivery"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/signing"
)

// dayReceiver is a tenant's receiver whose answer the scenario changes: it verifies every
// delivery with the official Standard Webhooks library and records it, whatever it
// answers; it always answers the challenge handshake.
type dayReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	answer int // the HTTP status it answers deliveries with
	got    []dayDelivery
}

type dayDelivery struct {
	id, eventType string
	data          map[string]any
	verified      bool
}

func newDayReceiver(t *testing.T, secret signing.Secret) *dayReceiver {
	wh, err := standardwebhooks.NewWebhook(secret.Encode())
	if err != nil {
		t.Fatal(err)
	}
	rc := &dayReceiver{answer: http.StatusNoContent}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var msg struct {
			Type, Challenge string
			Data            map[string]any
		}
		_ = json.Unmarshal(body, &msg)
		if msg.Type == "webhook.challenge" {
			_ = json.NewEncoder(w).Encode(map[string]string{"challenge": msg.Challenge})
			return
		}
		rc.mu.Lock()
		rc.got = append(rc.got, dayDelivery{id: r.Header.Get("webhook-id"), eventType: msg.Type, data: msg.Data, verified: wh.Verify(body, r.Header) == nil})
		answer := rc.answer
		rc.mu.Unlock()
		w.WriteHeader(answer)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *dayReceiver) answerWith(status int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answer = status
}

// since returns the deliveries after the first n.
func (rc *dayReceiver) since(n int) []dayDelivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got[n:])
}

func (rc *dayReceiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

func ids(ds []dayDelivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.id)
	}
	return out
}

// TestTenantsDay walks a tenant's day with its endpoints, through the API and the real
// consumers on the emulator: register → test → pause → events arrive (skipped) → resume →
// replay from the watermark (every event it missed arrives; a repeat is only ever of an
// event already delivered, same webhook-id) → the receiver starts failing → a failing
// notification on the ops endpoint → 410 → a disabled notification → re-enable →
// only_failed recovers what failed → resend one → delete → the URL registers anew.
// Notifications about the endpoint never reach the endpoint itself, which subscribes to
// everything.
func TestTenantsDay(t *testing.T) {
	t.Parallel()
	// Retries at once and no endpoint cache, so the day runs in seconds; the queue's
	// redrive (8 receives) matches MaxAttempts.
	s := newSystem(t, func(o *deliverypkg.Options) {
		o.CacheTTL = 0
		o.Schedule = []time.Duration{0}
	})
	secret, _ := signing.GenerateSecret()
	rc := newDayReceiver(t, secret)
	opsSecret, _ := signing.GenerateSecret()
	ops := newDayReceiver(t, opsSecret)

	status, ep := s.call("POST", "/endpoints", "acme", map[string]any{"url": rc.URL + "/hook", "events": []string{"*"}, "secret": secret.Encode()})
	if status != http.StatusCreated {
		t.Fatalf("register: %d %v", status, ep)
	}
	epID := ep["endpoint_id"].(string)
	if status, body := s.call("POST", "/endpoints", "acme", map[string]any{"url": ops.URL + "/ops", "events": []string{"webhooks.*"}, "secret": opsSecret.Encode()}); status != http.StatusCreated {
		t.Fatalf("register the ops endpoint: %d %v", status, body)
	}
	event := func(id string, at time.Time) {
		s.publish(map[string]any{"id": id, "tenant_id": "acme", "type": "export.done", "occurred_at": at.UTC().Format(time.RFC3339Nano), "data": map[string]any{"id": id}})
	}
	base := time.Now().Add(-time.Hour).UTC()

	// Test: one signed attempt, answered at once.
	status, sent := s.call("POST", "/endpoints/"+epID+"/test", "acme", nil)
	if status != http.StatusOK || sent["status"] != "succeeded" || sent["http_status"] != float64(http.StatusNoContent) {
		t.Fatalf("test: %d %v", status, sent)
	}
	if got := rc.since(0); len(got) != 1 || got[0].eventType != domain.TypeTest || !got[0].verified {
		t.Fatalf("the test send: %+v", got)
	}
	event("evt_day1", base)
	s.drain()
	if got := rc.since(1); len(got) != 1 || got[0].id != "evt_day1" {
		t.Fatalf("first event: %+v", got)
	}

	// Pause: the ops endpoint hears of it; events arrive and are skipped.
	if status, body := s.call("POST", "/endpoints/"+epID+"/disable", "acme", nil); status != http.StatusOK || body["disabled_reason"] != "tenant" {
		t.Fatalf("pause: %d %v", status, body)
	}
	event("evt_day2", base.Add(time.Minute))
	event("evt_day3", base.Add(2*time.Minute))
	s.drain()
	if n := rc.count(); n != 2 {
		t.Fatalf("a paused endpoint received deliveries: %+v", rc.since(2))
	}
	opsGot := ops.since(0)
	if len(opsGot) != 1 || opsGot[0].eventType != domain.TypeEndpointDisabled || opsGot[0].data["reason"] != "tenant" || opsGot[0].data["endpoint_id"] != epID || !opsGot[0].verified {
		t.Fatalf("ops endpoint after the pause: %+v", opsGot)
	}
	_, skipped := s.call("GET", "/endpoints/"+epID+"/deliveries?status=skipped", "acme", nil)
	if items, _ := skipped["items"].([]any); len(items) != 2 {
		t.Fatalf("skipped while paused: %v", skipped)
	}

	// Resume, then replay from the watermark: every event it missed arrives.
	if status, body := s.call("POST", "/endpoints/"+epID+"/enable", "acme", nil); status != http.StatusOK || body["status"] != "active" {
		t.Fatalf("resume: %d %v", status, body)
	}
	status, replay := s.call("POST", "/replay", "acme", map[string]any{"endpoint_id": epID})
	if status != http.StatusAccepted {
		t.Fatalf("replay from the watermark: %d %v", status, replay)
	}
	s.drain()
	seen := map[string]bool{"evt_day1": true}
	for _, d := range rc.since(0) {
		seen[d.id] = true
	}
	replayed := rc.since(2)
	for _, want := range []string{"evt_day2", "evt_day3"} {
		if !slices.Contains(ids(replayed), want) {
			t.Fatalf("the replay from the watermark missed %s: %v", want, ids(replayed))
		}
	}
	for _, d := range replayed {
		if d.id != "evt_day2" && d.id != "evt_day3" && d.id != "evt_day1" {
			t.Fatalf("the replay sent %s (%s), neither missed nor already delivered", d.id, d.eventType)
		}
		if !d.verified {
			t.Fatalf("replayed %s does not verify", d.id)
		}
	}
	for _, d := range rc.since(0) {
		if domain.NotificationSubject(domain.Event{Type: d.eventType, Data: mustJSON(t, d.data)}) == epID {
			t.Fatalf("the endpoint received a notification about itself: %+v", d)
		}
	}

	// The receiver starts failing: the delivery exhausts its retries, the ops endpoint is
	// warned once, and the endpoint says it is failing.
	rc.answerWith(http.StatusServiceUnavailable)
	event("evt_day4", base.Add(3*time.Minute))
	s.drain()
	opsGot = ops.since(1)
	if len(opsGot) != 1 || opsGot[0].eventType != domain.TypeEndpointFailing || opsGot[0].data["endpoint_id"] != epID {
		t.Fatalf("ops endpoint after the failures: %+v", opsGot)
	}
	if _, cur := s.call("GET", "/endpoints/"+epID, "acme", nil); cur["failing"] != true || cur["failing_since"] == nil {
		t.Fatalf("a failing endpoint: %v", cur)
	}

	// 410: disabled (gone), and the ops endpoint hears of it.
	rc.answerWith(http.StatusGone)
	event("evt_day5", base.Add(4*time.Minute))
	s.drain()
	opsGot = ops.since(2)
	if len(opsGot) != 1 || opsGot[0].eventType != domain.TypeEndpointDisabled || opsGot[0].data["reason"] != "gone" {
		t.Fatalf("ops endpoint after the 410: %+v", opsGot)
	}
	if _, cur := s.call("GET", "/endpoints/"+epID, "acme", nil); cur["status"] != "disabled" || cur["disabled_reason"] != "gone" || cur["failing"] != false {
		t.Fatalf("after the 410: %v", cur)
	}

	// Re-enable and recover only what failed: the two events that did not get through.
	rc.answerWith(http.StatusNoContent)
	if status, body := s.call("POST", "/endpoints/"+epID+"/enable", "acme", nil); status != http.StatusOK {
		t.Fatalf("re-enable: %d %v", status, body)
	}
	before := rc.count()
	status, recover := s.call("POST", "/replay", "acme", map[string]any{"endpoint_id": epID, "from": base.Format(time.RFC3339Nano), "only_failed": true})
	if status != http.StatusAccepted || recover["only_failed"] != true {
		t.Fatalf("only_failed replay: %d %v", status, recover)
	}
	s.drain()
	if got := ids(rc.since(before)); !slices.Equal(sorted(got), []string{"evt_day4", "evt_day5"}) {
		t.Fatalf("only_failed sent %v, want exactly the two failed events", got)
	}
	_, done := s.call("GET", "/replays/"+recover["replay_id"].(string), "acme", nil)
	if done["status"] != "completed" || done["events_enqueued"] != 2.0 {
		t.Fatalf("the recovery: %v", done)
	}

	// Resend one event: the same webhook-id again.
	before = rc.count()
	if status, body := s.call("POST", "/endpoints/"+epID+"/deliveries/evt_day1/resend", "acme", nil); status != http.StatusAccepted {
		t.Fatalf("resend: %d %v", status, body)
	}
	s.drain()
	if got := rc.since(before); len(got) != 1 || got[0].id != "evt_day1" || !got[0].verified {
		t.Fatalf("resend delivered %+v", got)
	}

	// Delete; the URL can be registered anew (a new endpoint, a new id).
	if status, body := s.call("DELETE", "/endpoints/"+epID, "acme", nil); status != http.StatusNoContent {
		t.Fatalf("delete: %d %v", status, body)
	}
	status, again := s.call("POST", "/endpoints", "acme", map[string]any{"url": rc.URL + "/hook", "events": []string{"*"}, "secret": secret.Encode()})
	if status != http.StatusCreated || again["endpoint_id"] == epID {
		t.Fatalf("register the URL anew: %d %v", status, again)
	}
	// Every notification was delivered to the ops endpoint, and verified.
	for _, d := range ops.since(0) {
		if !d.verified {
			t.Fatalf("ops delivery %s does not verify", d.id)
		}
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
