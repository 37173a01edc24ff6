package delivery

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/dev/memstore"
	"github.com/datajetty/webhooks/shared/domain"
)

// notification decodes the data of one published notification.
func notification(t *testing.T, e domain.Event, typ, endpointID string) map[string]any {
	t.Helper()
	if e.Type != typ || domain.NotificationSubject(e) != endpointID {
		t.Fatalf("published %s about %s, want %s about %s", e.Type, domain.NotificationSubject(e), typ, endpointID)
	}
	var data map[string]any
	if err := json.Unmarshal(e.Data, &data); err != nil {
		t.Fatal(err)
	}
	return data
}

// TestNotificationsOncePerStateChange: the first exhausted delivery of a streak publishes
// webhooks.endpoint.failing (once: the next exhausted one does not), the one that reaches
// the threshold webhooks.endpoint.disabled (reason failing), a 410
// webhooks.endpoint.disabled (reason gone), and the first success of a failing endpoint
// webhooks.endpoint.recovered; ordinary deliveries publish nothing.
func TestNotificationsOncePerStateChange(t *testing.T) {
	t.Parallel()
	n := &memstore.Notifier{}
	f := newFixture(t, allowLoopback, func(d *Deps) {
		d.Notifier = n
		d.Options.AutoDisableThreshold = 2
		d.Options.CacheTTL = 0
	})
	last := f.h.opts.MaxAttempts
	failing := true
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		if failing {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	ep := f.endpoint(t, rc.URL, time.Time{}, newSecret(t))
	occurred := time.Now().Add(-time.Hour).UTC()

	// A failed attempt that will be retried changes nothing.
	f.handle(t, message(t, job(ep, occurred), 1))
	if got := n.Published(); len(got) != 0 {
		t.Fatalf("a retried failure published %+v", got)
	}
	// The first exhausted delivery: failing.
	f.handle(t, message(t, job(ep, occurred), last))
	got := n.Published()
	if len(got) != 1 {
		t.Fatalf("after the first exhausted delivery: %d notifications, want 1", len(got))
	}
	data := notification(t, got[0], domain.TypeEndpointFailing, ep.ID)
	lastErr, _ := data["last_error"].(map[string]any)
	if data["url"] != ep.URL || data["failing_since"] == nil || lastErr["http_status"] != float64(503) || lastErr["error_class"] != ClassHTTP5xx {
		t.Fatalf("failing data %v", data)
	}
	if got := f.get(t, ep); got.FailingSince.IsZero() {
		t.Fatal("the endpoint is not marked failing")
	}
	// The success of a failing endpoint: recovered.
	failing = false
	f.handle(t, message(t, job(ep, occurred.Add(time.Second)), 1))
	got = n.Published()
	if len(got) != 2 {
		t.Fatalf("after a success: %d notifications, want 2", len(got))
	}
	if data := notification(t, got[1], domain.TypeEndpointRecovered, ep.ID); data["failing_since"] == nil || data["recovered_at"] == nil {
		t.Fatalf("recovered data %v", data)
	}
	f.handle(t, message(t, job(ep, occurred.Add(2*time.Second)), 1))
	if len(n.Published()) != 2 {
		t.Fatal("a success of an endpoint not failing published a notification")
	}
	// Two exhausted deliveries in a row: failing once, then disabled (threshold 2).
	failing = true
	f.handle(t, message(t, job(ep, occurred), last))
	f.handle(t, message(t, job(ep, occurred), last))
	got = n.Published()
	if len(got) != 4 {
		t.Fatalf("after two exhausted deliveries: %d notifications, want 4", len(got))
	}
	notification(t, got[2], domain.TypeEndpointFailing, ep.ID)
	if data := notification(t, got[3], domain.TypeEndpointDisabled, ep.ID); data["reason"] != "failing" ||
		data["detail"] != "2 consecutive deliveries exhausted all retries" || data["last_error"] == nil {
		t.Fatalf("disabled data %v", data)
	}

	// 410: disabled, reason gone, once.
	gone := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
	ep2 := f.endpoint(t, gone.URL, time.Time{}, newSecret(t))
	f.handle(t, message(t, job(ep2, occurred), 1), message(t, job(ep2, occurred.Add(time.Second)), 1))
	got = n.Published()
	if len(got) != 5 {
		t.Fatalf("after two 410s: %d notifications, want 5", len(got))
	}
	if data := notification(t, got[4], domain.TypeEndpointDisabled, ep2.ID); data["reason"] != "gone" || data["detail"] != "410 Gone" {
		t.Fatalf("gone data %v", data)
	}
}
