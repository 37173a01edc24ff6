package store

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/datajetty/webhooks/shared/domain"
)

// rawEndpoint reads the stored endpoint item as DynamoDB holds it.
func rawEndpoint(t *testing.T, s *Endpoints, tenantID, endpointID string) map[string]types.AttributeValue {
	t.Helper()
	av, err := s.get(context.Background(), tenantID, endpointSK(endpointID))
	if err != nil {
		t.Fatal(err)
	}
	return av
}

func deadStreak(t *testing.T, s *Endpoints, ep domain.Endpoint) string {
	t.Helper()
	if n, ok := rawEndpoint(t, s, ep.TenantID, ep.ID)["dead_streak"].(*types.AttributeValueMemberN); ok {
		return n.Value
	}
	return ""
}

func mustGet(t *testing.T, s *Endpoints, ep domain.Endpoint) domain.Endpoint {
	t.Helper()
	got, err := s.GetEndpoint(context.Background(), ep.TenantID, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestAdvanceWatermark(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEndpoints(t)
	ep := createEndpoint(t, s)

	steps := []struct {
		name string
		to   time.Time
		want time.Time
	}{
		{"first", tWhole, tWhole},
		// "…:26.5Z" sorts before "…:26Z" in trimmed RFC 3339; the fixed width gets it right.
		{"half a second later", tWhole.Add(500 * time.Millisecond), tWhole.Add(500 * time.Millisecond)},
		{"older is ignored", tWhole, tWhole.Add(500 * time.Millisecond)},
		{"equal is ignored", tWhole.Add(500 * time.Millisecond), tWhole.Add(500 * time.Millisecond)},
		{"a nanosecond later", tWhole.Add(500*time.Millisecond + 1), tWhole.Add(500*time.Millisecond + 1)},
		{"whole second after a fraction", tWhole.Add(time.Second), tWhole.Add(time.Second)},
	}
	for _, st := range steps {
		if _, err := s.AdvanceWatermark(ctx, ep.TenantID, ep.ID, st.to); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := mustGet(t, s, ep).Watermark; !got.Equal(st.want) {
			t.Errorf("%s: watermark = %s, want %s", st.name, got, st.want)
		}
	}
	stored := rawEndpoint(t, s, ep.TenantID, ep.ID)["watermark"].(*types.AttributeValueMemberS).Value
	if want := "2026-03-14T15:09:27.000000000Z"; stored != want {
		t.Errorf("stored watermark %q, want the fixed-width %q", stored, want)
	}

	t.Run("missing endpoint", func(t *testing.T) {
		ghost := domain.NewID(domain.EndpointIDPrefix)
		if _, err := s.AdvanceWatermark(ctx, ep.TenantID, ghost, tWhole); err != nil {
			t.Fatal(err)
		}
		if av := rawEndpoint(t, s, ep.TenantID, ghost); av != nil {
			t.Fatalf("AdvanceWatermark created an item for a missing endpoint: %v", av)
		}
	})
}

func TestUpdateEndpointKeepsDeliveryState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEndpoints(t)
	ep := newEndpoint("tenant-a", "https://example.com/hook")
	ep.Watermark = t0
	if err := s.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	read := mustGet(t, s, ep) // the tenant's request reads the endpoint…
	// …deliveries move on meanwhile…
	if _, err := s.AdvanceWatermark(ctx, ep.TenantID, ep.ID, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordExhausted(ctx, ep.TenantID, ep.ID, 10, t0); err != nil {
		t.Fatal(err)
	}
	// …and the update, written from the stale read, must not move the watermark back.
	next := read
	next.Version++
	next.Events = []string{"*"}
	if err := s.UpdateEndpoint(ctx, next, read.Version, read.URL); err != nil {
		t.Fatal(err)
	}
	got := mustGet(t, s, ep)
	if !got.Watermark.Equal(t0.Add(time.Hour)) {
		t.Errorf("watermark after update = %s, want %s", got.Watermark, t0.Add(time.Hour))
	}
	if len(got.Events) != 1 || got.Events[0] != "*" {
		t.Errorf("events = %v, the update was lost", got.Events)
	}
	if streak := deadStreak(t, s, ep); streak != "1" {
		t.Errorf("dead_streak after update = %q, want 1", streak)
	}

	// Nor does an update drop a watermark it does not know of.
	fresh := newEndpoint("tenant-a", "https://example.com/fresh")
	if err := s.CreateEndpoint(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdvanceWatermark(ctx, fresh.TenantID, fresh.ID, t0); err != nil {
		t.Fatal(err)
	}
	upd := fresh // Watermark zero, as read before the first delivery
	upd.Version++
	if err := s.UpdateEndpoint(ctx, upd, fresh.Version, fresh.URL); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, fresh).Watermark; !got.Equal(t0) {
		t.Errorf("watermark after an update from before it existed = %s, want %s", got, t0)
	}
}

func TestDisable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEndpoints(t)
	ep := createEndpoint(t, s)
	if _, err := s.RecordExhausted(ctx, ep.TenantID, ep.ID, 10, t0); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Minute)
	after, changed, err := s.Disable(ctx, ep.TenantID, ep.ID, domain.DisabledGone, "410 Gone", now)
	if err != nil || !changed {
		t.Fatalf("Disable = changed %v, %v", changed, err)
	}
	got := mustGet(t, s, ep)
	if got.Status != domain.StatusDisabled || got.DisabledReason != domain.DisabledGone || got.DisabledDetail != "410 Gone" ||
		got.Version != ep.Version+1 || !got.UpdatedAt.Equal(now) {
		t.Errorf("after Disable: status %s reason %q (%q) version %d updated %s", got.Status, got.DisabledReason, got.DisabledDetail, got.Version, got.UpdatedAt)
	}
	if !reflect.DeepEqual(after, got) {
		t.Errorf("Disable returned\n%+v\nthe stored endpoint is\n%+v", after, got)
	}
	if streak := deadStreak(t, s, ep); streak != "" {
		t.Errorf("dead_streak after Disable = %q, want none", streak)
	}

	t.Run("a tenant update from the old version conflicts", func(t *testing.T) {
		stale := ep // read before the disable: active, version 1
		stale.Version = ep.Version + 1
		wantReason(t, s.UpdateEndpoint(ctx, stale, ep.Version, ep.URL), domain.ReasonVersionMismatch)
		if got := mustGet(t, s, ep); got.Status != domain.StatusDisabled {
			t.Errorf("status = %s, the stale update re-enabled the endpoint", got.Status)
		}
	})

	t.Run("already disabled keeps the first reason", func(t *testing.T) {
		cur, changed, err := s.Disable(ctx, ep.TenantID, ep.ID, domain.DisabledByTenant, "", now.Add(time.Minute))
		if err != nil || changed {
			t.Fatalf("second Disable = changed %v, %v", changed, err)
		}
		if cur.DisabledReason != domain.DisabledGone || cur.Version != ep.Version+1 {
			t.Errorf("second Disable returned reason %q version %d, want the endpoint as it was", cur.DisabledReason, cur.Version)
		}
		if got := mustGet(t, s, ep); got.DisabledReason != domain.DisabledGone || got.Version != ep.Version+1 {
			t.Errorf("second Disable changed the endpoint: reason %q version %d", got.DisabledReason, got.Version)
		}
	})

	t.Run("re-enabled then disabled without detail clears the old detail", func(t *testing.T) {
		cur := mustGet(t, s, ep)
		next := cur
		next.Status, next.DisabledReason, next.DisabledDetail, next.Version = domain.StatusActive, "", "", cur.Version+1
		if err := s.UpdateEndpoint(ctx, next, cur.Version, ""); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, s, ep); got.DisabledReason != "" || got.DisabledDetail != "" {
			t.Fatalf("an update to active kept reason %q detail %q", got.DisabledReason, got.DisabledDetail)
		}
		if _, changed, err := s.Disable(ctx, ep.TenantID, ep.ID, domain.DisabledByTenant, "", now); err != nil || !changed {
			t.Fatalf("Disable: %v %v", changed, err)
		}
		if got := mustGet(t, s, ep); got.DisabledReason != domain.DisabledByTenant || got.DisabledDetail != "" {
			t.Fatalf("reason %q detail %q, want tenant and none", got.DisabledReason, got.DisabledDetail)
		}
	})

	t.Run("missing endpoint", func(t *testing.T) {
		ghost := domain.NewID(domain.EndpointIDPrefix)
		if _, _, err := s.Disable(ctx, ep.TenantID, ghost, domain.DisabledGone, "410 Gone", now); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("Disable(missing) = %v, want not found", err)
		}
		if av := rawEndpoint(t, s, ep.TenantID, ghost); av != nil {
			t.Fatalf("Disable created an item for a missing endpoint: %v", av)
		}
	})
}

// TestDisabledReasonOfOlderItems: an item written when disabled_reason held text reads as
// a reason code with that text as its detail.
func TestDisabledReasonOfOlderItems(t *testing.T) {
	t.Parallel()
	for stored, want := range map[string]struct {
		reason domain.DisabledReason
		detail string
	}{
		"410 Gone": {domain.DisabledGone, "410 Gone"},
		"5 consecutive deliveries exhausted all retries": {domain.DisabledFailing, "5 consecutive deliveries exhausted all retries"},
		"disabled by operator (INC-1234)":                {domain.DisabledByOperator, "disabled by operator (INC-1234)"},
		"tenant":                                         {domain.DisabledByTenant, ""},
		"":                                               {"", ""},
	} {
		if r, d := disabledReason(stored, ""); r != want.reason || d != want.detail {
			t.Errorf("%q reads as %q (%q), want %q (%q)", stored, r, d, want.reason, want.detail)
		}
	}
}

func TestRecordExhausted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEndpoints(t)
	ep := createEndpoint(t, s)

	exhaust := func(threshold int) bool {
		t.Helper()
		ex, err := s.RecordExhausted(ctx, ep.TenantID, ep.ID, threshold, t0)
		if err != nil {
			t.Fatal(err)
		}
		return ex.Disabled
	}

	// A success in between resets the streak, even for an event older than the watermark.
	exhaust(3)
	exhaust(3)
	if _, err := s.AdvanceWatermark(ctx, ep.TenantID, ep.ID, t0); err != nil {
		t.Fatal(err)
	}
	exhaust(3)
	if _, err := s.AdvanceWatermark(ctx, ep.TenantID, ep.ID, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if streak := deadStreak(t, s, ep); streak != "" {
		t.Fatalf("dead_streak after an older success = %q, want none", streak)
	}

	for i := 1; i <= 3; i++ {
		if disabled := exhaust(3); disabled != (i == 3) {
			t.Fatalf("exhausted delivery %d: disabled = %v", i, disabled)
		}
	}
	got := mustGet(t, s, ep)
	if got.Status != domain.StatusDisabled || got.DisabledReason != domain.DisabledFailing || got.DisabledDetail != "3 consecutive deliveries exhausted all retries" {
		t.Fatalf("after 3 exhausted deliveries: %s %q (%q)", got.Status, got.DisabledReason, got.DisabledDetail)
	}
	if exhaust(3) {
		t.Error("a disabled endpoint was disabled again")
	}
	if streak := deadStreak(t, s, ep); streak != "" {
		t.Errorf("a disabled endpoint counts exhausted deliveries: dead_streak %q", streak)
	}

	t.Run("missing endpoint", func(t *testing.T) {
		ghost := domain.NewID(domain.EndpointIDPrefix)
		ex, err := s.RecordExhausted(ctx, ep.TenantID, ghost, 1, t0)
		if err != nil || ex.Disabled || ex.Failing {
			t.Fatalf("RecordExhausted(missing) = %+v, %v", ex, err)
		}
		if av := rawEndpoint(t, s, ep.TenantID, ghost); av != nil {
			t.Fatalf("RecordExhausted created an item for a missing endpoint: %v", av)
		}
	})
}

func TestRecordExhaustedConcurrentDisablesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEndpoints(t)
	ep := createEndpoint(t, s)
	const callers, threshold = 12, 5
	var wg sync.WaitGroup
	results, failing := make([]bool, callers), make([]bool, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() {
			var ex domain.Exhausted
			ex, errs[i] = s.RecordExhausted(ctx, ep.TenantID, ep.ID, threshold, t0)
			results[i], failing[i] = ex.Disabled, ex.Failing
		})
	}
	wg.Wait()
	n := 0
	for i := range callers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if results[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d callers disabled the endpoint, want exactly 1", n)
	}
	if n := len(slices.DeleteFunc(failing, func(f bool) bool { return !f })); n != 1 {
		t.Fatalf("%d callers saw the endpoint become failing, want exactly 1", n)
	}
	if got := mustGet(t, s, ep); got.Status != domain.StatusDisabled || got.Version != ep.Version+1 {
		t.Fatalf("status %s version %d", got.Status, got.Version)
	}
}

func TestEndpointStateDependencyDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := NewEndpoints(downClient(t), "endpoints")
	_, err := s.AdvanceWatermark(ctx, "tenant-a", "ep_1", t0)
	wantKind(t, err, domain.ErrUnavailable)
	_, _, err = s.Disable(ctx, "tenant-a", "ep_1", domain.DisabledGone, "410 Gone", t0)
	wantKind(t, err, domain.ErrUnavailable)
	_, err = s.RecordExhausted(ctx, "tenant-a", "ep_1", 5, t0)
	wantKind(t, err, domain.ErrUnavailable)
}

// TestFailingAndRecovered: the first exhausted delivery of a streak makes the endpoint
// failing (for that call only); a success ends it and reports the recovery to exactly one
// caller, also when the success is older than the watermark; disabling ends it silently.
func TestFailingAndRecovered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newEndpoints(t)
	ep := createEndpoint(t, s)
	if rec, err := s.AdvanceWatermark(ctx, ep.TenantID, ep.ID, t0); err != nil || rec != nil {
		t.Fatalf("a success of an endpoint never failing: %v, %v", rec, err)
	}
	first, err := s.RecordExhausted(ctx, ep.TenantID, ep.ID, 10, t0.Add(time.Minute))
	if err != nil || !first.Failing || first.Disabled || !first.Endpoint.FailingSince.Equal(t0.Add(time.Minute)) || first.Endpoint.URL != ep.URL {
		t.Fatalf("first exhausted delivery: %+v, %v", first, err)
	}
	second, err := s.RecordExhausted(ctx, ep.TenantID, ep.ID, 10, t0.Add(2*time.Minute))
	if err != nil || second.Failing {
		t.Fatalf("second exhausted delivery of the streak: %+v, %v (the warning is once per streak)", second, err)
	}
	if got := mustGet(t, s, ep); !got.FailingSince.Equal(t0.Add(time.Minute)) {
		t.Fatalf("failing_since %v, want the first exhausted delivery's time", got.FailingSince)
	}
	// A success older than the watermark still ends it, and only one of two reports it.
	var wg sync.WaitGroup
	recs := make([]*domain.Endpoint, 2)
	for i := range recs {
		wg.Go(func() {
			var err error
			if recs[i], err = s.AdvanceWatermark(ctx, ep.TenantID, ep.ID, t0.Add(-time.Hour)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(slices.DeleteFunc(recs, func(e *domain.Endpoint) bool { return e == nil })); n != 1 {
		t.Fatalf("%d callers saw the recovery, want exactly 1", n)
	}
	if got := mustGet(t, s, ep); !got.FailingSince.IsZero() || deadStreak(t, s, ep) != "" {
		t.Fatalf("after a success: failing_since %v, dead_streak %q", got.FailingSince, deadStreak(t, s, ep))
	}
	// A newer success of a failing endpoint reports it as it was.
	if _, err := s.RecordExhausted(ctx, ep.TenantID, ep.ID, 10, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	rec, err := s.AdvanceWatermark(ctx, ep.TenantID, ep.ID, t0.Add(time.Hour))
	if err != nil || rec == nil || !rec.FailingSince.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("recovery by a newer success: %+v, %v", rec, err)
	}
	// Disabling ends the failing state: no recovery is reported after it.
	if _, err := s.RecordExhausted(ctx, ep.TenantID, ep.ID, 10, t0.Add(4*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, changed, err := s.Disable(ctx, ep.TenantID, ep.ID, domain.DisabledByTenant, "", t0); err != nil || !changed {
		t.Fatal(changed, err)
	}
	if got := mustGet(t, s, ep); !got.FailingSince.IsZero() {
		t.Fatalf("a disabled endpoint is still failing since %v", got.FailingSince)
	}
	if rec, err := s.AdvanceWatermark(ctx, ep.TenantID, ep.ID, t0.Add(2*time.Hour)); err != nil || rec != nil {
		t.Fatalf("success after disabling: %+v, %v", rec, err)
	}
}
