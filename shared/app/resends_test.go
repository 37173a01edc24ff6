package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/domain"
)

// memIndex is an EventIndex of a fixed set of events per endpoint.
type memIndex map[string]domain.EventRef // endpoint id + "/" + event id → ref

func (m memIndex) Lookup(_ context.Context, _, endpointID, eventID string) (domain.EventRef, error) {
	ref, ok := m[endpointID+"/"+eventID]
	if !ok {
		return domain.EventRef{}, domain.NotFound("event %s is not in the delivery log", eventID)
	}
	return ref, nil
}

// memEvents is an EventReader of stored events that expire at a given time.
type memEvents struct {
	events  map[string]domain.Event
	expires time.Time
}

func (m memEvents) Get(_ context.Context, _ string, ref domain.EventRef, now time.Time) (domain.Event, error) {
	e, ok := m.events[ref.ID]
	if !ok || !now.Before(m.expires) {
		return domain.Event{}, domain.NotFound("event %s is no longer stored", ref.ID)
	}
	return e, nil
}

// memJobs records the jobs it is given, or fails them.
type memJobs struct {
	sent []domain.DeliveryJob
	fail error
}

func (m *memJobs) Send(_ context.Context, jobs []domain.DeliveryJob) ([]domain.DeliveryJob, error) {
	if m.fail != nil {
		return jobs, m.fail
	}
	m.sent = append(m.sent, jobs...)
	return nil, nil
}

func TestResend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	ep := f.endpoint(t, tenant, "https://example.com/hook", secret(t), domain.StatusActive)
	paused := f.endpoint(t, tenant, "https://example.com/paused", secret(t), domain.StatusDisabled)
	e := domain.Event{ID: "evt_1", TenantID: tenant, Type: "import.done", OccurredAt: now.Add(-time.Hour), Data: json.RawMessage(`{}`)}
	ref := domain.EventRef{ID: e.ID, Type: e.Type, OccurredAt: e.OccurredAt}
	jobs := &memJobs{}
	r := &app.Resends{
		Endpoints: f.store,
		Index:     memIndex{ep.ID + "/evt_1": ref, ep.ID + "/evt_gone": {ID: "evt_gone"}, paused.ID + "/evt_1": ref},
		Events:    memEvents{events: map[string]domain.Event{"evt_1": e}, expires: now.Add(time.Hour)},
		Jobs:      jobs,
		Now:       func() time.Time { return now },
	}
	// The endpoint subscribes to export.* only: a resend ignores the patterns.
	if err := r.Resend(ctx, tenant, ep.ID, "evt_1"); err != nil {
		t.Fatal(err)
	}
	if len(jobs.sent) != 1 || jobs.sent[0].EndpointID != ep.ID || jobs.sent[0].Event.ID != "evt_1" || !jobs.sent[0].Resend || jobs.sent[0].ReplayID != "" {
		t.Fatalf("jobs %+v, want one resend job of evt_1 for the endpoint", jobs.sent)
	}
	for _, c := range []struct {
		name            string
		tenant, ep, evt string
		kind            domain.Kind
		reason          string
	}{
		{"not in this endpoint's log", tenant, ep.ID, "evt_2", domain.KindNotFound, ""},
		{"no longer stored", tenant, ep.ID, "evt_gone", domain.KindNotFound, ""},
		{"malformed event id", tenant, ep.ID, "evt#1", domain.KindNotFound, ""},
		{"another tenant's endpoint", "tenant-b", ep.ID, "evt_1", domain.KindNotFound, ""},
		{"malformed endpoint id", tenant, "ep_1", "evt_1", domain.KindNotFound, ""},
		{"a disabled endpoint", tenant, paused.ID, "evt_1", domain.KindConflict, domain.ReasonEndpointDisabled},
	} {
		err := r.Resend(ctx, c.tenant, c.ep, c.evt)
		var de *domain.Error
		if !errors.As(err, &de) || de.Kind != c.kind || de.Reason != c.reason {
			t.Errorf("%s: %v, want kind %d reason %q", c.name, err, c.kind, c.reason)
		}
	}
	if len(jobs.sent) != 1 {
		t.Fatalf("refused resends queued jobs: %+v", jobs.sent)
	}
	// Past the retention, even an event still in the table is gone.
	r.Now = func() time.Time { return now.Add(2 * time.Hour) }
	if err := r.Resend(ctx, tenant, ep.ID, "evt_1"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("past the retention: %v", err)
	}
	// The queue failing is the client's retryable 503.
	r.Now = func() time.Time { return now }
	jobs.fail = errors.New("sqs down")
	if err := r.Resend(ctx, tenant, ep.ID, "evt_1"); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("queue down: %v, want unavailable", err)
	}
}
