// Package storetest is the behaviour suite of the endpoint and replay stores: what the
// application (shared/app) and the replay worker rely on, checked the same way against
// every implementation. The DynamoDB adapters (shared/store, on the emulator) and the
// in-memory fake (shared/dev/memstore) both run it, so a fake that tests elsewhere trust
// cannot drift from the real store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/replayworker"
)

// ReplayStore is the replay store as the application and the replay worker use it.
type ReplayStore interface {
	app.ReplayStore
	replayworker.ReplayStore
}

// Stores are the implementations under test. They must share their state: the replay
// lock lives on the endpoint.
type Stores struct {
	Endpoints app.EndpointStore
	Replays   ReplayStore
}

// t0 is a fixed instant with nanoseconds, so round trips of times are checked exactly.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

// Run runs every behaviour against s. Each case works in tenants of its own, so one pair
// of stores (one set of tables) serves them all, in parallel.
func Run(t *testing.T, s Stores) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s Stores, tenant string)
	}{
		{"CreateGetFind", createGetFind},
		{"URLRegisteredOncePerTenant", urlOncePerTenant},
		{"UpdateChecksTheVersion", updateChecksVersion},
		{"UpdateMovesTheURLClaim", updateMovesClaim},
		{"UpdateKeepsTheWatermark", updateKeepsWatermark},
		{"ListPagesInIDOrderWithoutSecrets", listPages},
		{"StartAndGetReplay", startAndGet},
		{"OneReplayPerEndpointAtATime", oneReplayAtATime},
		{"ReplayNeedsAnActiveEndpoint", replayNeedsActiveEndpoint},
		{"AbortReleasesTheLock", abortReleasesLock},
		{"ProgressRenewsTheLockUntilLost", progressRenewsLock},
		{"EndpointUpdateKeepsTheReplayLock", updateKeepsLock},
		{"DeleteChecksTheVersionAndFreesTheURL", deleteFreesURL},
		{"ProgressStopsWhenTheEndpointIsDeleted", progressAfterDelete},
		{"DisableOnceKeepsTheFirstReason", disableOnce},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, s, fmt.Sprintf("tenant-%s", domain.NewID("")))
		})
	}
}

func endpoint(tenant, url string) domain.Endpoint {
	return domain.Endpoint{
		TenantID: tenant, ID: domain.NewID(domain.EndpointIDPrefix), URL: url,
		Events: []string{"export.*", "import.done"}, Status: domain.StatusActive, Version: 1,
		CreatedAt: t0, UpdatedAt: t0, SecretCiphertext: []byte{1, 2, 3},
	}
}

func replay(ep domain.Endpoint) domain.Replay {
	return domain.Replay{
		TenantID: ep.TenantID, ID: domain.NewID(domain.ReplayIDPrefix), EndpointID: ep.ID,
		From: t0.Add(-time.Hour), Until: t0, Status: domain.ReplayStarted, CreatedAt: t0, UpdatedAt: t0,
	}
}

func create(t *testing.T, s Stores, ep domain.Endpoint) domain.Endpoint {
	t.Helper()
	if err := s.Endpoints.CreateEndpoint(context.Background(), ep); err != nil {
		t.Fatalf("create %s: %v", ep.URL, err)
	}
	return ep
}

func get(t *testing.T, s Stores, tenant, id string) domain.Endpoint {
	t.Helper()
	ep, err := s.Endpoints.GetEndpoint(context.Background(), tenant, id)
	if err != nil {
		t.Fatalf("get endpoint %s: %v", id, err)
	}
	return ep
}

func getReplay(t *testing.T, s Stores, tenant, id string) domain.Replay {
	t.Helper()
	r, err := s.Replays.GetReplay(context.Background(), tenant, id)
	if err != nil {
		t.Fatalf("get replay %s: %v", id, err)
	}
	return r
}

// want fails unless err is of sentinel's kind and, for a reason, carries it.
func want(t *testing.T, what string, err, sentinel error, reason string) {
	t.Helper()
	var de *domain.Error
	if !errors.Is(err, sentinel) || reason != "" && (!errors.As(err, &de) || de.Reason != reason) {
		t.Fatalf("%s: error %v (kind %d), want kind %d with reason %q", what, err, domain.KindOf(err), domain.KindOf(sentinel), reason)
	}
}

func createGetFind(t *testing.T, s Stores, tenant string) {
	ctx := context.Background()
	ep := endpoint(tenant, "https://example.com/hook")
	ep.Watermark = t0.Add(time.Minute)
	ep.PreviousSecretCiphertext = []byte{4, 5}
	ep.PreviousSecretExpiresAt = t0.Add(24 * time.Hour)
	create(t, s, ep)
	if got := get(t, s, tenant, ep.ID); !reflect.DeepEqual(got, ep) {
		t.Errorf("GetEndpoint =\n%#v\nwant\n%#v", got, ep)
	}
	found, err := s.Endpoints.FindEndpointByURL(ctx, tenant, ep.URL)
	if err != nil || !reflect.DeepEqual(found, ep) {
		t.Errorf("FindEndpointByURL = %#v, %v", found, err)
	}
	_, err = s.Endpoints.GetEndpoint(ctx, tenant+"-other", ep.ID)
	want(t, "another tenant's endpoint", err, domain.ErrNotFound, "")
	_, err = s.Endpoints.FindEndpointByURL(ctx, tenant+"-other", ep.URL)
	want(t, "another tenant's url", err, domain.ErrNotFound, "")
	_, err = s.Endpoints.FindEndpointByURL(ctx, tenant, "https://example.com/other")
	want(t, "an unregistered url", err, domain.ErrNotFound, "")
	_, err = s.Endpoints.GetEndpoint(ctx, tenant, domain.NewID(domain.EndpointIDPrefix))
	want(t, "an unknown endpoint", err, domain.ErrNotFound, "")
}

func urlOncePerTenant(t *testing.T, s Stores, tenant string) {
	first := create(t, s, endpoint(tenant, "https://example.com/hook"))
	err := s.Endpoints.CreateEndpoint(context.Background(), endpoint(tenant, first.URL))
	want(t, "the same url twice", err, domain.ErrConflict, domain.ReasonURLTaken)
	create(t, s, endpoint(tenant+"-other", first.URL))
}

func updateChecksVersion(t *testing.T, s Stores, tenant string) {
	ctx := context.Background()
	ep := create(t, s, endpoint(tenant, "https://example.com/hook"))
	next := ep
	next.Events, next.Version, next.UpdatedAt = []string{"import.failed"}, 2, t0.Add(time.Hour)
	next.Status, next.DisabledReason, next.DisabledDetail = domain.StatusDisabled, domain.DisabledGone, "410 Gone"
	if err := s.Endpoints.UpdateEndpoint(ctx, next, 1, ep.URL); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, tenant, ep.ID); !reflect.DeepEqual(got, next) {
		t.Errorf("after the update =\n%#v\nwant\n%#v", got, next)
	}
	stale := next
	stale.Version = 3
	want(t, "an update from a stale version", s.Endpoints.UpdateEndpoint(ctx, stale, 1, ep.URL), domain.ErrConflict, domain.ReasonVersionMismatch)
	unknown := endpoint(tenant, "https://example.com/unknown")
	unknown.Version = 2
	want(t, "an update of an unknown endpoint", s.Endpoints.UpdateEndpoint(ctx, unknown, 1, ""), domain.ErrNotFound, "")
	if err := s.Endpoints.UpdateEndpoint(ctx, next, 2, ep.URL); err == nil {
		t.Error("an update that does not raise the version was accepted")
	}
}

func updateMovesClaim(t *testing.T, s Stores, tenant string) {
	ctx := context.Background()
	ep := create(t, s, endpoint(tenant, "https://example.com/a"))
	other := create(t, s, endpoint(tenant, "https://example.com/b"))
	moved := ep
	moved.URL, moved.Version = "https://example.com/c", 2
	if err := s.Endpoints.UpdateEndpoint(ctx, moved, 1, ep.URL); err != nil {
		t.Fatal(err)
	}
	if found, err := s.Endpoints.FindEndpointByURL(ctx, tenant, moved.URL); err != nil || found.ID != ep.ID {
		t.Errorf("the new url finds %v, %v", found.ID, err)
	}
	_, err := s.Endpoints.FindEndpointByURL(ctx, tenant, ep.URL)
	want(t, "the old url", err, domain.ErrNotFound, "")
	taken := moved
	taken.URL, taken.Version = other.URL, 3
	want(t, "moving onto another endpoint's url", s.Endpoints.UpdateEndpoint(ctx, taken, 2, moved.URL), domain.ErrConflict, domain.ReasonURLTaken)
	create(t, s, endpoint(tenant, ep.URL)) // the released url can be registered again
}

func updateKeepsWatermark(t *testing.T, s Stores, tenant string) {
	ep := endpoint(tenant, "https://example.com/hook")
	ep.Watermark = t0.Add(time.Minute)
	create(t, s, ep)
	next := ep
	next.Watermark, next.Version = time.Time{}, 2
	if err := s.Endpoints.UpdateEndpoint(context.Background(), next, 1, ep.URL); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s, tenant, ep.ID).Watermark; !got.Equal(ep.Watermark) {
		t.Errorf("watermark after an update = %v, want %v as stored (the delivery side owns it)", got, ep.Watermark)
	}
}

func listPages(t *testing.T, s Stores, tenant string) {
	ctx := context.Background()
	var ids []string
	for i := range 5 {
		ep := endpoint(tenant, fmt.Sprintf("https://example.com/%d", i))
		ep.PreviousSecretCiphertext, ep.PreviousSecretExpiresAt = []byte{9}, t0
		ids = append(ids, create(t, s, ep).ID)
	}
	create(t, s, endpoint(tenant+"-other", "https://example.com/0"))
	slices.Sort(ids)
	var got []string
	after := ""
	for page := 0; ; page++ {
		eps, more, err := s.Endpoints.ListEndpoints(ctx, tenant, 2, after)
		if err != nil {
			t.Fatal(err)
		}
		if page > 3 || len(eps) > 2 || more && len(eps) != 2 {
			t.Fatalf("page %d: %d endpoints, more %v", page, len(eps), more)
		}
		for _, ep := range eps {
			if ep.SecretCiphertext != nil || ep.PreviousSecretCiphertext != nil {
				t.Errorf("a listing returned %s's secret ciphertexts", ep.ID)
			}
			if ep.URL == "" || ep.Version != 1 || !ep.PreviousSecretExpiresAt.Equal(t0) {
				t.Errorf("a listing lost fields of %s: %#v", ep.ID, ep)
			}
			got = append(got, ep.ID)
		}
		if !more {
			break
		}
		after = eps[len(eps)-1].ID
	}
	if !slices.Equal(got, ids) {
		t.Errorf("listed %v, want %v (every endpoint of the tenant, in id order)", got, ids)
	}
	if _, _, err := s.Endpoints.ListEndpoints(ctx, tenant, 0, ""); err == nil {
		t.Error("a listing of limit 0 was accepted")
	}
}

func startAndGet(t *testing.T, s Stores, tenant string) {
	ctx := context.Background()
	ep := create(t, s, endpoint(tenant, "https://example.com/hook"))
	r := replay(ep)
	now := t0.Add(time.Second)
	if err := s.Replays.StartReplay(ctx, r, now.Add(domain.ReplayLease), now); err != nil {
		t.Fatal(err)
	}
	wantR := r
	wantR.UpdatedAt = now
	if got := getReplay(t, s, tenant, r.ID); !reflect.DeepEqual(got, wantR) {
		t.Errorf("GetReplay =\n%#v\nwant\n%#v", got, wantR)
	}
	_, err := s.Replays.GetReplay(ctx, tenant+"-other", r.ID)
	want(t, "another tenant's replay", err, domain.ErrNotFound, "")
	_, err = s.Replays.GetReplay(ctx, tenant, domain.NewID(domain.ReplayIDPrefix))
	want(t, "an unknown replay", err, domain.ErrNotFound, "")
}

func oneReplayAtATime(t *testing.T, s Stores, tenant string) {
	ctx := context.Background()
	ep := create(t, s, endpoint(tenant, "https://example.com/hook"))
	lease := t0.Add(domain.ReplayLease)
	if err := s.Replays.StartReplay(ctx, replay(ep), lease, t0); err != nil {
		t.Fatal(err)
	}
	want(t, "a second replay", s.Replays.StartReplay(ctx, replay(ep), lease, t0), domain.ErrConflict, domain.ReasonReplayInProgress)
	want(t, "a replay at the lease's last second", s.Replays.StartReplay(ctx, replay(ep), lease, lease), domain.ErrConflict, domain.ReasonReplayInProgress)
	after := lease.Add(time.Second)
	if err := s.Replays.StartReplay(ctx, replay(ep), after.Add(domain.ReplayLease), after); err != nil {
		t.Errorf("a replay after the lease expired: %v", err)
	}
	other := create(t, s, endpoint(tenant, "https://example.com/other"))
	if err := s.Replays.StartReplay(ctx, replay(other), lease, t0); err != nil {
		t.Errorf("a replay of another endpoint: %v", err)
	}
}

func replayNeedsActiveEndpoint(t *testing.T, s Stores, tenant string) {
	ctx := context.Background()
	ep := endpoint(tenant, "https://example.com/hook")
	ep.Status, ep.DisabledReason, ep.DisabledDetail = domain.StatusDisabled, domain.DisabledGone, "410 Gone"
	create(t, s, ep)
	lease := t0.Add(domain.ReplayLease)
	want(t, "a replay of a disabled endpoint", s.Replays.StartReplay(ctx, replay(ep), lease, t0), domain.ErrConflict, domain.ReasonEndpointDisabled)
	unknown := endpoint(tenant, "https://example.com/unknown")
	want(t, "a replay of an unknown endpoint", s.Replays.StartReplay(ctx, replay(unknown), lease, t0), domain.ErrNotFound, "")
	elsewhere := endpoint(tenant+"-other", ep.URL)
	create(t, s, elsewhere)
	r := replay(elsewhere)
	r.TenantID = tenant
	want(t, "a replay of another tenant's endpoint", s.Replays.StartReplay(ctx, r, lease, t0), domain.ErrNotFound, "")
}

func abortReleasesLock(t *testing.T, s Stores, tenant string) {
	ctx := context.Background()
	ep := create(t, s, endpoint(tenant, "https://example.com/hook"))
	r := replay(ep)
	lease := t0.Add(domain.ReplayLease)
	if err := s.Replays.StartReplay(ctx, r, lease, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Replays.AbortReplay(ctx, r, "could not be queued", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	got := getReplay(t, s, tenant, r.ID)
	if got.Status != domain.ReplayFailed || got.Error != "could not be queued" || !got.UpdatedAt.Equal(t0.Add(time.Second)) {
		t.Errorf("aborted replay: %#v", got)
	}
	if err := s.Replays.StartReplay(ctx, replay(ep), lease, t0); err != nil {
		t.Errorf("a replay after an abort: %v", err)
	}
}

func progressRenewsLock(t *testing.T, s Stores, tenant string) {
	ctx := context.Background()
	ep := create(t, s, endpoint(tenant, "https://example.com/hook"))
	r := replay(ep)
	lease := t0.Add(domain.ReplayLease)
	if err := s.Replays.StartReplay(ctx, r, lease, t0); err != nil {
		t.Fatal(err)
	}
	r.Status, r.Enqueued, r.Cursor = domain.ReplayRunning, 3, "cursor-1"
	renewed := lease.Add(domain.ReplayLease)
	if err := s.Replays.UpdateProgress(ctx, r, renewed, lease); err != nil {
		t.Fatal(err)
	}
	if got := getReplay(t, s, tenant, r.ID); got.Status != r.Status || got.Enqueued != 3 || got.Cursor != "cursor-1" || !got.UpdatedAt.Equal(lease) {
		t.Errorf("after progress: %#v", got)
	}
	want(t, "a replay while the renewed lease lasts", s.Replays.StartReplay(ctx, replay(ep), renewed, lease.Add(time.Second)), domain.ErrConflict, domain.ReasonReplayInProgress)

	// The lease runs out, another replay takes the lock: the first one has lost it.
	later := renewed.Add(time.Second)
	if err := s.Replays.StartReplay(ctx, replay(ep), later.Add(domain.ReplayLease), later); err != nil {
		t.Fatal(err)
	}
	want(t, "progress of a replay that lost its lock", s.Replays.UpdateProgress(ctx, r, later.Add(domain.ReplayLease), later), domain.ErrConflict, domain.ReasonReplayInProgress)
	r.Status, r.Error = domain.ReplayFailed, "lost its lock"
	if err := s.Replays.FinishReplay(ctx, r, later); err != nil {
		t.Fatal(err)
	}
	if got := getReplay(t, s, tenant, r.ID); got.Status != domain.ReplayFailed || got.Error != "lost its lock" {
		t.Errorf("finished replay: %#v", got)
	}
	want(t, "a replay while the new one holds the lock", s.Replays.StartReplay(ctx, replay(ep), later.Add(domain.ReplayLease), later), domain.ErrConflict, domain.ReasonReplayInProgress)

	unknown := replay(ep)
	unknown.Status = domain.ReplayRunning
	want(t, "progress of an unknown replay", s.Replays.UpdateProgress(ctx, unknown, later, later), domain.ErrNotFound, "")
	unknown.Status = domain.ReplayCompleted
	want(t, "finishing an unknown replay", s.Replays.FinishReplay(ctx, unknown, later), domain.ErrNotFound, "")
	r.Status = domain.ReplayRunning
	if err := s.Replays.FinishReplay(ctx, r, later); err == nil {
		t.Error("finishing with a status that is not final was accepted")
	}
}

func updateKeepsLock(t *testing.T, s Stores, tenant string) {
	ctx := context.Background()
	ep := create(t, s, endpoint(tenant, "https://example.com/hook"))
	lease := t0.Add(domain.ReplayLease)
	if err := s.Replays.StartReplay(ctx, replay(ep), lease, t0); err != nil {
		t.Fatal(err)
	}
	next := ep
	next.Events, next.Version = []string{"*"}, 2
	if err := s.Endpoints.UpdateEndpoint(ctx, next, 1, ep.URL); err != nil {
		t.Fatal(err)
	}
	want(t, "a replay after an endpoint update", s.Replays.StartReplay(ctx, replay(ep), lease, t0), domain.ErrConflict, domain.ReasonReplayInProgress)
}

func deleteFreesURL(t *testing.T, s Stores, tenant string) {
	ctx := context.Background()
	ep := create(t, s, endpoint(tenant, "https://example.com/delete"))
	other := create(t, s, endpoint(tenant+"-b", ep.URL))
	want(t, "delete with a stale version", s.Endpoints.DeleteEndpoint(ctx, ep, 2), domain.ErrConflict, domain.ReasonVersionMismatch)
	if err := s.Endpoints.DeleteEndpoint(ctx, ep, 1); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err := s.Endpoints.GetEndpoint(ctx, tenant, ep.ID)
	want(t, "get after delete", err, domain.ErrNotFound, "")
	_, err = s.Endpoints.FindEndpointByURL(ctx, tenant, ep.URL)
	want(t, "find by the freed url", err, domain.ErrNotFound, "")
	want(t, "delete twice", s.Endpoints.DeleteEndpoint(ctx, ep, 1), domain.ErrNotFound, "")
	create(t, s, endpoint(tenant, ep.URL)) // the URL is free
	get(t, s, other.TenantID, other.ID)    // another tenant's endpoint at that URL is untouched
}

func progressAfterDelete(t *testing.T, s Stores, tenant string) {
	ctx := context.Background()
	ep := create(t, s, endpoint(tenant, "https://example.com/replayed"))
	r := replay(ep)
	if err := s.Replays.StartReplay(ctx, r, t0.Add(domain.ReplayLease), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Endpoints.DeleteEndpoint(ctx, ep, 1); err != nil {
		t.Fatal(err)
	}
	r.Status, r.Enqueued = domain.ReplayRunning, 3
	if err := s.Replays.UpdateProgress(ctx, r, t0.Add(domain.ReplayLease), t0); !errors.Is(err, domain.ErrEndpointDeleted) {
		t.Fatalf("checkpoint after the endpoint was deleted: %v, want domain.ErrEndpointDeleted", err)
	}
	if got := getReplay(t, s, tenant, r.ID); got.Status != domain.ReplayStarted || got.Enqueued != 0 {
		t.Fatalf("a refused checkpoint wrote the replay: %+v", got)
	}
}

func disableOnce(t *testing.T, s Stores, tenant string) {
	ctx := context.Background()
	ep := create(t, s, endpoint(tenant, "https://example.com/paused"))
	now := t0.Add(time.Minute)
	got, changed, err := s.Endpoints.Disable(ctx, tenant, ep.ID, domain.DisabledByTenant, "paused by the tenant", now)
	if err != nil || !changed {
		t.Fatalf("disable: changed %v, %v", changed, err)
	}
	wantEP := ep
	wantEP.Status, wantEP.DisabledReason, wantEP.DisabledDetail, wantEP.Version, wantEP.UpdatedAt = domain.StatusDisabled, domain.DisabledByTenant, "paused by the tenant", 2, now
	if stored := get(t, s, tenant, ep.ID); !reflect.DeepEqual(stored, wantEP) || !reflect.DeepEqual(got, wantEP) {
		t.Fatalf("after disable:\n returned %+v\n stored   %+v\n want     %+v", got, stored, wantEP)
	}
	again, changed, err := s.Endpoints.Disable(ctx, tenant, ep.ID, domain.DisabledGone, "410 Gone", now.Add(time.Minute))
	if err != nil || changed || !reflect.DeepEqual(again, wantEP) {
		t.Fatalf("disable again: changed %v, %v, returned %+v; want the endpoint as it was", changed, err, again)
	}
	_, _, err = s.Endpoints.Disable(ctx, tenant, domain.NewID(domain.EndpointIDPrefix), domain.DisabledGone, "", now)
	want(t, "disable a missing endpoint", err, domain.ErrNotFound, "")
	// A stale tenant update conflicts instead of re-enabling it.
	stale := ep
	stale.Version = 2
	want(t, "update from before the disable", s.Endpoints.UpdateEndpoint(ctx, stale, 1, ""), domain.ErrConflict, domain.ReasonVersionMismatch)
}
