package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/datajetty/webhooks/shared/store"
)

func nowMinus(h int) string {
	return time.Now().Add(-time.Duration(h) * time.Hour).UTC().Format(time.RFC3339)
}

func TestReplayStartsAndQueuesJob(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{})
	rc := newReceiver(t)
	id := c.register("acme", rc.url("/r")).str("endpoint_id")
	from := nowMinus(6)

	r := c.do("POST", "/replay", "acme", map[string]any{"endpoint_id": id, "from": from}, nil)
	if r.Status != http.StatusAccepted || r.str("status") != "started" || r.str("replay_id") == "" {
		t.Fatalf("replay: %d %s", r.Status, r.Raw)
	}
	rid := r.str("replay_id")

	// The job is on the ReplayQueue, naming the tenant and replay.
	q := sqs.NewFromConfig(w.aws)
	out, err := q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(w.env["WEBHOOKS_REPLAY_QUEUE_URL"]), MaxNumberOfMessages: 10, WaitTimeSeconds: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("want 1 replay job on the queue, got %d", len(out.Messages))
	}
	var job struct {
		TenantID string `json:"tenant_id"`
		ReplayID string `json:"replay_id"`
	}
	if err := json.Unmarshal([]byte(*out.Messages[0].Body), &job); err != nil || job.TenantID != "acme" || job.ReplayID != rid {
		t.Fatalf("job %q: %v", *out.Messages[0].Body, err)
	}

	// Its state is readable, and a second replay of the same endpoint conflicts.
	g := c.do("GET", "/replays/"+rid, "acme", nil, nil)
	if g.Status != http.StatusOK || g.str("endpoint_id") != id || g.str("status") != "started" {
		t.Fatalf("get replay: %d %s", g.Status, g.Raw)
	}
	if got, _ := time.Parse(time.RFC3339Nano, g.str("from")); got.Format(time.RFC3339) != from {
		t.Fatalf("from %s != %s", g.str("from"), from)
	}
	r = c.do("POST", "/replay", "acme", map[string]any{"endpoint_id": id, "from": from}, nil)
	expectError(t, r, http.StatusConflict, "version_conflict", "replay")
	if r.str("reason") != "replay_in_progress" {
		t.Fatalf("reason: %s", r.Raw)
	}
}

func TestReplayValidation(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{})
	rc := newReceiver(t)
	id := c.register("acme", rc.url("/r")).str("endpoint_id")
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	old := time.Now().Add(-31 * 24 * time.Hour).UTC().Format(time.RFC3339)
	cases := []struct {
		name  string
		body  any
		field string
	}{
		{"future", map[string]any{"endpoint_id": id, "from": future}, "future"},
		{"older than retention", map[string]any{"endpoint_id": id, "from": old}, "retention"},
		{"not RFC 3339", map[string]any{"endpoint_id": id, "from": "yesterday"}, "from"},
		{"missing from", map[string]any{"endpoint_id": id}, "from"},
		{"missing endpoint", map[string]any{"from": nowMinus(1)}, "endpoint_id"},
		{"unknown field", map[string]any{"endpoint_id": id, "from": nowMinus(1), "to": "x"}, "to"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectError(t, c.do("POST", "/replay", "acme", tc.body, nil), http.StatusBadRequest, "invalid_request", tc.field)
		})
	}
	expectError(t, c.do("POST", "/replay", "acme", map[string]any{"endpoint_id": "ep_doesnotexistdoesnotexist", "from": nowMinus(1)}, nil), http.StatusNotFound, "not_found", "")
	expectError(t, c.do("POST", "/replay", "acme", map[string]any{"endpoint_id": "garbage", "from": nowMinus(1)}, nil), http.StatusNotFound, "not_found", "")
	expectError(t, c.do("GET", "/replays/rp_doesnotexistdoesnotexist", "acme", nil, nil), http.StatusNotFound, "not_found", "")
	expectError(t, c.do("GET", "/replays/garbage", "acme", nil, nil), http.StatusNotFound, "not_found", "")
}

// TestReplayDefaultsToTheWatermark: without from, a replay starts right after the
// endpoint's watermark; an endpoint without one needs a from; only_failed is kept and shown.
func TestReplayDefaultsToTheWatermark(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.server(serverOpts{})
	rc := newReceiver(t)
	id := c.register("acme", rc.url("/wm")).str("endpoint_id")

	r := c.do("POST", "/replay", "acme", map[string]any{"endpoint_id": id, "only_failed": true}, nil)
	expectError(t, r, http.StatusBadRequest, "invalid_request", "no watermark")
	if r.str("field") != "from" {
		t.Fatalf("field %q, want from", r.str("field"))
	}
	mark := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Millisecond)
	if _, err := store.NewEndpoints(dynamodb.NewFromConfig(w.aws), w.env["WEBHOOKS_ENDPOINTS_TABLE"]).AdvanceWatermark(context.Background(), "acme", id, mark); err != nil {
		t.Fatal(err)
	}
	r = c.do("POST", "/replay", "acme", map[string]any{"endpoint_id": id, "only_failed": true}, nil)
	if r.Status != http.StatusAccepted || r.Body["only_failed"] != true {
		t.Fatalf("replay from the watermark: %d %s", r.Status, r.Raw)
	}
	if from, _ := time.Parse(time.RFC3339Nano, r.str("from")); !from.Equal(mark.Add(time.Nanosecond)) {
		t.Fatalf("from %s, want right after the watermark %s", r.str("from"), mark.Format(time.RFC3339Nano))
	}
	if g := c.do("GET", "/replays/"+r.str("replay_id"), "acme", nil, nil); g.Body["only_failed"] != true {
		t.Fatalf("GET replay: %s", g.Raw)
	}
	expectError(t, c.do("POST", "/replay", "globex", map[string]any{"endpoint_id": id}, nil), http.StatusNotFound, "not_found", "")
	r = c.do("POST", "/replay", "acme", map[string]any{"endpoint_id": id, "only_failed": "yes"}, nil)
	expectError(t, r, http.StatusBadRequest, "invalid_request", "only_failed")
}
