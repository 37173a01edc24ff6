package app_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/dev/memstore"
	"github.com/datajetty/webhooks/shared/domain"
)

func TestStartReplay(t *testing.T) {
	t.Parallel()
	est := time.FixedZone("EST", -5*3600)
	for _, tc := range []struct {
		name string
		// endpoint is the status of the tenant's endpoint; "" = the request names an
		// unknown endpoint; "busy" = active with a replay in progress.
		endpoint   domain.EndpointStatus
		endpointID string // when set, the request names this id instead
		from       time.Time
		queueDown  bool
		noStoreUse bool

		fails  bool
		kind   domain.Kind
		reason string
		field  string
	}{
		{name: "from an hour ago", endpoint: domain.StatusActive, from: now.Add(-time.Hour)},
		{name: "from the oldest retained moment", endpoint: domain.StatusActive, from: now.Add(-domain.EventRetention)},
		{name: "from now", endpoint: domain.StatusActive, from: now},
		{name: "from given in another zone", endpoint: domain.StatusActive, from: now.Add(-time.Hour).In(est)},
		{name: "from in the future", endpoint: domain.StatusActive, from: now.Add(time.Second),
			fails: true, kind: domain.KindInvalid, field: "from", noStoreUse: true},
		{name: "from before the retention", endpoint: domain.StatusActive, from: now.Add(-domain.EventRetention - time.Second),
			fails: true, kind: domain.KindInvalid, field: "from", noStoreUse: true},
		{name: "a malformed endpoint id", endpointID: "ep_x", from: now.Add(-time.Hour),
			fails: true, kind: domain.KindNotFound, noStoreUse: true},
		{name: "an unknown endpoint", from: now.Add(-time.Hour),
			fails: true, kind: domain.KindNotFound},
		{name: "a disabled endpoint", endpoint: domain.StatusDisabled, from: now.Add(-time.Hour),
			fails: true, kind: domain.KindConflict, reason: domain.ReasonEndpointDisabled},
		{name: "a replay already in progress", endpoint: "busy", from: now.Add(-time.Hour),
			fails: true, kind: domain.KindConflict, reason: domain.ReasonReplayInProgress},
		{name: "the queue is down", endpoint: domain.StatusActive, from: now.Add(-time.Hour), queueDown: true,
			fails: true, kind: domain.KindInternal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newFixture()
			id := domain.NewID(domain.EndpointIDPrefix)
			switch tc.endpoint {
			case "":
			case "busy":
				ep := f.endpoint(t, tenant, hookURL, secret(t), domain.StatusActive)
				id = ep.ID
				if _, err := f.replays.Start(ctx, tenant, id, now.Add(-time.Minute)); err != nil {
					t.Fatal(err)
				}
			default:
				id = f.endpoint(t, tenant, hookURL, secret(t), tc.endpoint).ID
			}
			if tc.endpointID != "" {
				id = tc.endpointID
			}
			if tc.queueDown {
				f.queue.Err = errors.New("queue unavailable")
			}
			queued := len(f.queue.Sent())
			calls := f.store.Calls()

			r, err := f.replays.Start(ctx, tenant, id, tc.from)

			if tc.noStoreUse && f.store.Calls() != calls {
				t.Errorf("the store was called %d times", f.store.Calls()-calls)
			}
			if tc.fails {
				wantErr(t, err, tc.kind, tc.reason, tc.field)
				if len(f.queue.Sent()) != queued {
					t.Error("a replay that failed to start was queued")
				}
				if tc.queueDown {
					checkReleased(t, f, id)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := domain.Replay{TenantID: tenant, ID: r.ID, EndpointID: id, From: tc.from.UTC(), Until: now,
				Status: domain.ReplayStarted, CreatedAt: now, UpdatedAt: now}
			if !reflect.DeepEqual(r, want) || !domain.ValidID(domain.ReplayIDPrefix, r.ID) {
				t.Errorf("Start =\n%#v\nwant\n%#v", r, want)
			}
			if stored, err := f.store.GetReplay(ctx, tenant, r.ID); err != nil || !reflect.DeepEqual(stored, want) {
				t.Errorf("stored %#v, %v", stored, err)
			}
			if sent := f.queue.Sent(); !reflect.DeepEqual(sent, []memstore.ReplayJob{{TenantID: tenant, ReplayID: r.ID}}) {
				t.Errorf("queued %v, want the replay once", sent)
			}
			_, err = f.replays.Start(ctx, tenant, id, tc.from)
			wantErr(t, err, domain.KindConflict, domain.ReasonReplayInProgress, "")
		})
	}
}

// checkReleased: a replay that could not be queued releases the endpoint's lock, so the
// tenant can simply retry once the queue is back.
func checkReleased(t *testing.T, f *fixture, endpointID string) {
	t.Helper()
	f.queue.Err = nil
	if _, err := f.replays.Start(context.Background(), tenant, endpointID, now.Add(-time.Hour)); err != nil {
		t.Fatalf("a retry after the queue came back: %v", err)
	}
}

func TestGetReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	ep := f.endpoint(t, tenant, hookURL, secret(t), domain.StatusActive)
	started, err := f.replays.Start(ctx, tenant, ep.ID, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.replays.Get(ctx, tenant, started.ID); err != nil || !reflect.DeepEqual(got, started) {
		t.Errorf("Get = %#v, %v", got, err)
	}
	_, err = f.replays.Get(ctx, "tenant-b", started.ID)
	wantErr(t, err, domain.KindNotFound, "", "")
	calls := f.store.Calls()
	_, err = f.replays.Get(ctx, tenant, "rp_malformed")
	wantErr(t, err, domain.KindNotFound, "", "")
	if f.store.Calls() != calls {
		t.Error("a malformed replay id reached the store")
	}
}

// attemptLog is a fake of app.AttemptLog that records the query it was asked.
type attemptLog struct {
	asked   []any
	answers []domain.Attempt
}

func (l *attemptLog) List(_ context.Context, tenantID, endpointID string, status domain.DeliveryStatus, limit int, after string) ([]domain.Attempt, string, error) {
	l.asked = []any{tenantID, endpointID, status, limit, after}
	return l.answers, "next", nil
}

func TestListDeliveries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	ep := f.endpoint(t, tenant, hookURL, secret(t), domain.StatusActive)
	foreign := f.endpoint(t, "tenant-b", hookURL, secret(t), domain.StatusActive)
	log := &attemptLog{answers: []domain.Attempt{{TenantID: tenant, EndpointID: ep.ID, EventID: "evt_1"}}}
	s := &app.Deliveries{Endpoints: f.store, Log: log}

	items, next, err := s.List(ctx, tenant, ep.ID, domain.DeliverySucceeded, 25, "pos")
	if err != nil || next != "next" || !reflect.DeepEqual(items, log.answers) {
		t.Errorf("List = %v, %q, %v", items, next, err)
	}
	if want := []any{tenant, ep.ID, domain.DeliverySucceeded, 25, "pos"}; !reflect.DeepEqual(log.asked, want) {
		t.Errorf("asked the log %v, want %v", log.asked, want)
	}
	// The log is listed while the endpoint is read (one round trip): for an endpoint that is
	// not the tenant's, the listing may have gone out, but only under the caller's own
	// tenant (the log's key), and its answer is dropped.
	for name, id := range map[string]string{"another tenant's endpoint": foreign.ID, "an unknown endpoint": domain.NewID(domain.EndpointIDPrefix)} {
		log.asked = nil
		items, next, err := s.List(ctx, tenant, id, "", 25, "")
		if domain.KindOf(err) != domain.KindNotFound || items != nil || next != "" {
			t.Errorf("%s: %v, %q, %v; want not found and nothing listed", name, items, next, err)
		}
		if log.asked != nil && log.asked[0] != tenant {
			t.Errorf("%s: the log was asked for tenant %v", name, log.asked[0])
		}
	}
	log.asked = nil
	if _, _, err := s.List(ctx, tenant, "ep_", "", 25, ""); domain.KindOf(err) != domain.KindNotFound || log.asked != nil {
		t.Errorf("a malformed id: %v, log asked %v; want not found without reading anything", err, log.asked)
	}
}
