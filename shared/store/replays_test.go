package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/domain"
)

func newReplay(ep domain.Endpoint) domain.Replay {
	return domain.Replay{
		TenantID:   ep.TenantID,
		ID:         domain.NewID(domain.ReplayIDPrefix),
		EndpointID: ep.ID,
		From:       t0.Add(-time.Hour),
		Until:      t0,
		Status:     domain.ReplayStarted,
		CreatedAt:  t0,
		UpdatedAt:  t0,
	}
}

// replayFixture is an endpoint store and a replay store on one stack, with one active
// endpoint.
type replayFixture struct {
	endpoints *Endpoints
	replays   *Replays
	ep        domain.Endpoint
}

func newReplayFixture(t *testing.T) replayFixture {
	t.Helper()
	db, env := newStack(t)
	f := replayFixture{
		endpoints: NewEndpoints(db, env["WEBHOOKS_ENDPOINTS_TABLE"]),
		replays:   NewReplays(db, env["WEBHOOKS_REPLAYS_TABLE"], env["WEBHOOKS_ENDPOINTS_TABLE"]),
		ep:        newEndpoint("tenant-a", "https://example.com/hook"),
	}
	if err := f.endpoints.CreateEndpoint(context.Background(), f.ep); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestReplayStartGet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newReplayFixture(t)

	r := newReplay(f.ep)
	if err := f.replays.StartReplay(ctx, r, t0.Add(domain.ReplayLease), t0); err != nil {
		t.Fatal(err)
	}
	got, err := f.replays.GetReplay(ctx, "tenant-a", r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("GetReplay =\n%#v\nwant\n%#v", got, r)
	}
	_, err = f.replays.GetReplay(ctx, "tenant-b", r.ID)
	wantKind(t, err, domain.ErrNotFound)
	_, err = f.replays.GetReplay(ctx, "tenant-a", domain.NewID(domain.ReplayIDPrefix))
	wantKind(t, err, domain.ErrNotFound)
}

func TestReplayLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newReplayFixture(t)
	lease := t0.Add(domain.ReplayLease)

	first := newReplay(f.ep)
	if err := f.replays.StartReplay(ctx, first, lease, t0); err != nil {
		t.Fatal(err)
	}

	t.Run("second start while leased", func(t *testing.T) {
		r := newReplay(f.ep)
		wantReason(t, f.replays.StartReplay(ctx, r, lease.Add(time.Minute), t0.Add(time.Minute)), domain.ReasonReplayInProgress)
		_, err := f.replays.GetReplay(ctx, "tenant-a", r.ID)
		wantKind(t, err, domain.ErrNotFound) // the refused replay left no record
	})

	t.Run("unknown endpoint", func(t *testing.T) {
		ghost := newEndpoint("tenant-a", "https://example.com/ghost")
		wantKind(t, f.replays.StartReplay(ctx, newReplay(ghost), lease, t0), domain.ErrNotFound)
	})

	t.Run("another tenant's endpoint", func(t *testing.T) {
		r := newReplay(f.ep)
		r.TenantID = "tenant-b"
		wantKind(t, f.replays.StartReplay(ctx, r, lease, t0), domain.ErrNotFound)
	})

	t.Run("abort releases", func(t *testing.T) {
		if err := f.replays.AbortReplay(ctx, first, "could not be queued", t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		got, err := f.replays.GetReplay(ctx, "tenant-a", first.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != domain.ReplayFailed || got.Error != "could not be queued" || !got.UpdatedAt.Equal(t0.Add(time.Second)) {
			t.Errorf("aborted replay = %s %q updated %s", got.Status, got.Error, got.UpdatedAt)
		}
		next := newReplay(f.ep)
		if err := f.replays.StartReplay(ctx, next, lease, t0.Add(2*time.Second)); err != nil {
			t.Fatalf("start after abort: %v", err)
		}
		first = next
	})

	t.Run("expired lease", func(t *testing.T) {
		r := newReplay(f.ep)
		if err := f.replays.StartReplay(ctx, r, lease.Add(domain.ReplayLease), lease.Add(time.Second)); err != nil {
			t.Fatalf("start after the lease expired: %v", err)
		}
		// The replay that lost its lease cannot release the new one's lock.
		if err := f.replays.AbortReplay(ctx, first, "late", lease.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		wantReason(t, f.replays.StartReplay(ctx, newReplay(f.ep), lease.Add(domain.ReplayLease), lease.Add(3*time.Second)), domain.ReasonReplayInProgress)
	})
}

func TestReplayDisabledEndpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newReplayFixture(t)

	disabled := f.ep
	disabled.Version = 2
	disabled.Status = domain.StatusDisabled
	disabled.DisabledReason = domain.DisabledGone
	if err := f.endpoints.UpdateEndpoint(ctx, disabled, 1, f.ep.URL); err != nil {
		t.Fatal(err)
	}
	wantReason(t, f.replays.StartReplay(ctx, newReplay(f.ep), t0.Add(domain.ReplayLease), t0), domain.ReasonEndpointDisabled)
}

func TestReplayClassificationWithoutReasons(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, env := newStack(t)
	endpoints := NewEndpoints(db, env["WEBHOOKS_ENDPOINTS_TABLE"])
	s := NewReplays(bareErrors(t), env["WEBHOOKS_REPLAYS_TABLE"], env["WEBHOOKS_ENDPOINTS_TABLE"])

	active := newEndpoint("tenant-a", "https://example.com/a")
	disabled := newEndpoint("tenant-a", "https://example.com/d")
	disabled.Status = domain.StatusDisabled
	for _, ep := range []domain.Endpoint{active, disabled} {
		if err := endpoints.CreateEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
	}
	lease := t0.Add(domain.ReplayLease)
	if err := s.StartReplay(ctx, newReplay(active), lease, t0); err != nil {
		t.Fatal(err)
	}
	wantReason(t, s.StartReplay(ctx, newReplay(active), lease, t0), domain.ReasonReplayInProgress)
	wantReason(t, s.StartReplay(ctx, newReplay(disabled), lease, t0), domain.ReasonEndpointDisabled)
	wantKind(t, s.StartReplay(ctx, newReplay(newEndpoint("tenant-a", "https://example.com/x")), lease, t0), domain.ErrNotFound)
}

func TestReplayWorkerProgress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newReplayFixture(t)
	lease := t0.Add(domain.ReplayLease)

	r := newReplay(f.ep)
	if err := f.replays.StartReplay(ctx, r, lease, t0); err != nil {
		t.Fatal(err)
	}

	// A checkpoint stores progress and renews the lease past its original end.
	r.Status = domain.ReplayRunning
	r.Enqueued = 120
	r.Cursor = "opaque-cursor"
	renewed := lease.Add(domain.ReplayLease)
	if err := f.replays.UpdateProgress(ctx, r, renewed, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := f.replays.GetReplay(ctx, "tenant-a", r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != domain.ReplayRunning || got.Enqueued != 120 || got.Cursor != "opaque-cursor" || !got.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("after progress: %+v", got)
	}
	wantReason(t, f.replays.StartReplay(ctx, newReplay(f.ep), lease.Add(time.Hour), lease.Add(time.Second)), domain.ReasonReplayInProgress)

	// Finishing stores the final state and releases the lock.
	r.Status = domain.ReplayCompleted
	r.Enqueued = 130
	r.Cursor = ""
	if err := f.replays.FinishReplay(ctx, r, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err = f.replays.GetReplay(ctx, "tenant-a", r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != domain.ReplayCompleted || got.Enqueued != 130 || got.Cursor != "" {
		t.Errorf("after finish: %+v", got)
	}
	next := newReplay(f.ep)
	if err := f.replays.StartReplay(ctx, next, lease.Add(time.Hour), t0.Add(3*time.Minute)); err != nil {
		t.Fatalf("start after finish: %v", err)
	}

	// The finished replay no longer holds the lock: its checkpoints are refused.
	wantReason(t, f.replays.UpdateProgress(ctx, r, renewed, t0.Add(4*time.Minute)), domain.ReasonReplayInProgress)

	unknown := newReplay(f.ep)
	wantKind(t, f.replays.UpdateProgress(ctx, unknown, renewed, t0), domain.ErrNotFound)
	unknown.Status = domain.ReplayFailed
	wantKind(t, f.replays.FinishReplay(ctx, unknown, t0), domain.ErrNotFound)
	if err := f.replays.FinishReplay(ctx, next, t0); err == nil {
		t.Error("FinishReplay accepted a non-final status")
	}
}

func TestReplaysDatabaseDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewReplays(downClient(t), "replays", "endpoints")
	r := newReplay(newEndpoint("tenant-a", "https://example.com/hook"))
	checks := map[string]error{
		"start":    s.StartReplay(ctx, r, t0.Add(time.Minute), t0),
		"abort":    s.AbortReplay(ctx, r, "x", t0),
		"progress": s.UpdateProgress(ctx, r, t0.Add(time.Minute), t0),
	}
	_, checks["get"] = s.GetReplay(ctx, "tenant-a", r.ID)
	for name, err := range checks {
		if !errors.Is(err, domain.ErrUnavailable) {
			t.Errorf("%s: error = %v, want domain.ErrUnavailable", name, err)
		}
	}
}
