package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/datajetty/webhooks/shared/dev/memstore"
	"github.com/datajetty/webhooks/shared/domain"
)

func TestDisablePausesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	ep := f.endpoint(t, tenant, "https://example.com/hook", secret(t), domain.StatusActive)

	got, changed, err := f.endpoints.Disable(ctx, tenant, ep.ID)
	if err != nil || !changed {
		t.Fatalf("disable: changed %v, %v", changed, err)
	}
	if got.Status != domain.StatusDisabled || got.DisabledReason != domain.DisabledByTenant || got.DisabledDetail != "paused by the tenant" ||
		got.Version != 2 || !got.UpdatedAt.Equal(now) {
		t.Fatalf("disabled endpoint: %+v", got)
	}
	again, changed, err := f.endpoints.Disable(ctx, tenant, ep.ID)
	if err != nil || changed || again.Version != 2 {
		t.Fatalf("disable twice: changed %v, version %d, %v; want the endpoint unchanged", changed, again.Version, err)
	}
	for _, tc := range []struct{ tenant, id string }{{"tenant-b", ep.ID}, {tenant, "ep_nope"}, {tenant, domain.NewID(domain.EndpointIDPrefix)}} {
		if _, _, err := f.endpoints.Disable(ctx, tc.tenant, tc.id); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("disable %s/%s: %v, want not found", tc.tenant, tc.id, err)
		}
	}
	if len(f.challenger.Asked()) != 0 {
		t.Fatal("disabling must not run the handshake")
	}
}

func TestEnableRunsTheHandshake(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	s := secret(t)
	ep := f.endpoint(t, tenant, "https://example.com/hook", s, domain.StatusDisabled)

	// A failed handshake is the client's 400 on url, and nothing changes.
	f.challenger.Err = errors.New("challenge handshake failed: https://example.com/hook answered HTTP 500 (expected 2xx echoing the challenge)")
	_, err := f.endpoints.Enable(ctx, tenant, ep.ID)
	var de *domain.Error
	if !errors.As(err, &de) || de.Kind != domain.KindInvalid || de.Field != "url" || de.Reason != domain.ReasonHandshakeFailed {
		t.Fatalf("enable with a failing handshake: %v", err)
	}
	if cur := f.stored(t, ep.ID); cur.Status != domain.StatusDisabled || cur.Version != 1 {
		t.Fatalf("a failed enable changed the endpoint: %+v", cur)
	}

	f.challenger.Err = nil
	got, err := f.endpoints.Enable(ctx, tenant, ep.ID)
	if err != nil || got.Status != domain.StatusActive || got.DisabledReason != "" || got.DisabledDetail != "" || got.Version != 2 {
		t.Fatalf("enable: %+v, %v", got, err)
	}
	asked := f.challenger.Asked()
	if len(asked) != 2 || asked[1].URL != ep.URL || !asked[1].Secret.Equal(s) {
		t.Fatalf("the handshake must run against the endpoint's URL with its secret: %+v", asked)
	}
	if cur := f.stored(t, ep.ID); cur.Status != domain.StatusActive || cur.Version != 2 {
		t.Fatalf("stored after enable: %+v", cur)
	}
	// Enabling an active endpoint is a no-op: no handshake, no new version.
	if again, err := f.endpoints.Enable(ctx, tenant, ep.ID); err != nil || again.Version != 2 || len(f.challenger.Asked()) != 2 {
		t.Fatalf("enable an active endpoint: %+v, %v, %d handshakes", again, err, len(f.challenger.Asked()))
	}
	if _, err := f.endpoints.Enable(ctx, "tenant-b", ep.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("another tenant's endpoint: %v", err)
	}
}

// TestDisableNotifiesOnce: the call that pauses the endpoint publishes one
// webhooks.endpoint.disabled (reason tenant, no last error); a repeat publishes nothing; a
// failed publish leaves the endpoint disabled and the request successful.
func TestDisableNotifiesOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture()
	n := &memstore.Notifier{}
	f.endpoints.Notifier = n
	ep := f.endpoint(t, tenant, "https://example.com/hook", secret(t), domain.StatusActive)
	if _, _, err := f.endpoints.Disable(ctx, tenant, ep.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.endpoints.Disable(ctx, tenant, ep.ID); err != nil {
		t.Fatal(err)
	}
	got := n.Published()
	if len(got) != 1 || got[0].Type != domain.TypeEndpointDisabled || got[0].TenantID != tenant || domain.NotificationSubject(got[0]) != ep.ID {
		t.Fatalf("published %+v, want one webhooks.endpoint.disabled about %s", got, ep.ID)
	}
	var data map[string]any
	if err := json.Unmarshal(got[0].Data, &data); err != nil {
		t.Fatal(err)
	}
	if data["reason"] != "tenant" || data["url"] != ep.URL || data["detail"] != "paused by the tenant" || data["last_error"] != nil {
		t.Fatalf("data %v", data)
	}

	other := f.endpoint(t, tenant, "https://example.com/other", secret(t), domain.StatusActive)
	n.Err = errors.New("queue down")
	if got, changed, err := f.endpoints.Disable(ctx, tenant, other.ID); err != nil || !changed || got.Status != domain.StatusDisabled {
		t.Fatalf("disable with the notifier down: %+v %v %v; want disabled and no error", got, changed, err)
	}
}
