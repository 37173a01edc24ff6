package app_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/dev/memstore"
	"github.com/datajetty/webhooks/shared/domain"
	"github.com/datajetty/webhooks/shared/signing"
)

const tenant = "tenant-a"

// now is the services' clock in every test.
var now = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// fixture is the application services on the in-memory fakes of their ports.
type fixture struct {
	store      *memstore.Store
	box        *memstore.SecretBox
	challenger *memstore.Challenger
	queue      *memstore.ReplayQueue
	endpoints  *app.Endpoints
	replays    *app.Replays
}

func newFixture() *fixture {
	f := &fixture{store: &memstore.Store{}, box: &memstore.SecretBox{}, challenger: &memstore.Challenger{}, queue: &memstore.ReplayQueue{}}
	clock := func() time.Time { return now }
	f.endpoints = &app.Endpoints{Store: f.store, Secrets: f.box, Challenger: f.challenger, Now: clock}
	f.replays = &app.Replays{Store: f.store, Queue: f.queue, Now: clock}
	return f
}

func secret(t *testing.T) signing.Secret {
	t.Helper()
	s, err := signing.GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// endpoint stores an endpoint of the tenant for url, signed by s, and returns it.
func (f *fixture) endpoint(t *testing.T, tenantID, url string, s signing.Secret, status domain.EndpointStatus) domain.Endpoint {
	t.Helper()
	ctx := context.Background()
	ep := domain.Endpoint{
		TenantID: tenantID, ID: domain.NewID(domain.EndpointIDPrefix), URL: url, Events: []string{"export.*"},
		Status: status, Version: 1, CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour),
	}
	if status == domain.StatusDisabled {
		ep.DisabledReason, ep.DisabledDetail = domain.DisabledGone, "410 Gone"
	}
	ct, err := f.box.Seal(ctx, tenantID, ep.ID, s)
	if err != nil {
		t.Fatal(err)
	}
	ep.SecretCiphertext = ct
	if err := f.store.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	return ep
}

// opened decrypts ciphertext as the endpoint's secret.
func (f *fixture) opened(t *testing.T, ep domain.Endpoint, ciphertext []byte) signing.Secret {
	t.Helper()
	s, err := f.box.Open(context.Background(), ep.TenantID, ep.ID, ciphertext)
	if err != nil {
		t.Fatalf("open a secret of %s: %v", ep.ID, err)
	}
	return s
}

func (f *fixture) stored(t *testing.T, id string) domain.Endpoint {
	t.Helper()
	ep, err := f.store.GetEndpoint(context.Background(), tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// wantErr checks err's kind, and its reason and field when given ("" = not checked).
func wantErr(t *testing.T, err error, kind domain.Kind, reason, field string) {
	t.Helper()
	var de *domain.Error
	errors.As(err, &de)
	switch {
	case err == nil:
		t.Fatalf("no error, want kind %d %s", kind, reason)
	case domain.KindOf(err) != kind:
		t.Fatalf("error %v has kind %d, want %d", err, domain.KindOf(err), kind)
	case reason != "" && de.Reason != reason:
		t.Fatalf("error %v has reason %q, want %q", err, de.Reason, reason)
	case field != "" && de.Field != field:
		t.Fatalf("error %v names field %q, want %q", err, de.Field, field)
	}
}

func ptr[T any](v T) *T { return &v }
