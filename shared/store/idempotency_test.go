package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/domain"
)

func newIdempotency(t *testing.T) *Idempotency {
	db, env := newStack(t)
	return NewIdempotency(db, env["WEBHOOKS_IDEMPOTENCY_TABLE"])
}

func TestIdempotencyReserveCompleteReplay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newIdempotency(t)
	const tenant, key = "tenant-a", "req-1"
	lease := t0.Add(30 * time.Second)

	stored, err := s.Reserve(ctx, tenant, key, "fp-1", lease, t0)
	if err != nil || stored != nil {
		t.Fatalf("first Reserve = %v, %v; want nil, nil", stored, err)
	}

	// While the first request runs, the same request waits and a different one is refused.
	_, err = s.Reserve(ctx, tenant, key, "fp-1", lease.Add(time.Second), t0.Add(time.Second))
	wantReason(t, err, domain.ReasonRequestInProgress)
	_, err = s.Reserve(ctx, tenant, key, "fp-2", lease.Add(time.Second), t0.Add(time.Second))
	wantReason(t, err, domain.ReasonIdempotencyReused)
	// Another tenant's identical request id is a different key.
	if stored, err := s.Reserve(ctx, "tenant-b", "req-1", "fp-2", lease, t0); err != nil || stored != nil {
		t.Fatalf("other tenant's Reserve = %v, %v; want nil, nil", stored, err)
	}

	resp := app.StoredResponse{Status: 201, ContentType: "application/json", Body: []byte(`{"id":"ep_1"}`)}
	if err := s.Complete(ctx, tenant, key, resp, t0.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}

	// A retry of the same request gets the stored response, even after the lease.
	stored, err = s.Reserve(ctx, tenant, key, "fp-1", lease.Add(time.Hour), t0.Add(time.Hour))
	if err != nil || stored == nil || !reflect.DeepEqual(*stored, resp) {
		t.Fatalf("Reserve after Complete = %+v, %v; want %+v", stored, err, resp)
	}
	_, err = s.Reserve(ctx, tenant, key, "fp-2", lease.Add(time.Hour), t0.Add(time.Hour))
	wantReason(t, err, domain.ReasonIdempotencyReused)
	if msg := err.Error(); !strings.Contains(msg, `"req-1"`) || strings.Contains(msg, "tenant-a") {
		t.Errorf("message %q should name the X-Request-Id, not the internal key", msg)
	}

	// A completed record is not released, and once it expires the key is free again.
	if err := s.Release(ctx, tenant, key); err != nil {
		t.Fatal(err)
	}
	if stored, err := s.Reserve(ctx, tenant, key, "fp-1", lease, t0.Add(time.Hour)); err != nil || stored == nil {
		t.Fatalf("Release dropped a completed response: %v, %v", stored, err)
	}
	later := t0.Add(25 * time.Hour)
	if stored, err := s.Reserve(ctx, tenant, key, "fp-3", later.Add(30*time.Second), later); err != nil || stored != nil {
		t.Fatalf("Reserve after expiry = %v, %v; want nil, nil", stored, err)
	}
}

func TestIdempotencyEmptyBody(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newIdempotency(t)
	if _, err := s.Reserve(ctx, "t", "r", "fp", t0.Add(time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, "t", "r", app.StoredResponse{Status: 204}, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	stored, err := s.Reserve(ctx, "t", "r", "fp", t0.Add(time.Minute), t0)
	if err != nil || stored == nil || stored.Status != 204 || len(stored.Body) != 0 {
		t.Fatalf("Reserve = %+v, %v; want the stored 204", stored, err)
	}
}

func TestIdempotencyExpiredLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newIdempotency(t)
	const tenant, key = "tenant-a", "req-crash"

	if _, err := s.Reserve(ctx, tenant, key, "fp-1", t0.Add(30*time.Second), t0); err != nil {
		t.Fatal(err)
	}
	// The first execution crashed; after its lease a retry takes over.
	after := t0.Add(31 * time.Second)
	if stored, err := s.Reserve(ctx, tenant, key, "fp-1", after.Add(30*time.Second), after); err != nil || stored != nil {
		t.Fatalf("Reserve after the lease = %v, %v; want nil, nil", stored, err)
	}
	_, err := s.Reserve(ctx, tenant, key, "fp-1", after.Add(time.Minute), after.Add(time.Second))
	wantReason(t, err, domain.ReasonRequestInProgress)
}

func TestIdempotencyRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newIdempotency(t)
	const tenant, key = "tenant-a", "req-2"
	lease := t0.Add(30 * time.Second)

	if _, err := s.Reserve(ctx, tenant, key, "fp-1", lease, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, tenant, key); err != nil {
		t.Fatal(err)
	}
	if stored, err := s.Reserve(ctx, tenant, key, "fp-1", lease, t0.Add(time.Second)); err != nil || stored != nil {
		t.Fatalf("Reserve after Release = %v, %v; want nil, nil", stored, err)
	}
	if err := s.Release(ctx, tenant, key); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, tenant, key); err != nil {
		t.Fatalf("releasing an absent key: %v", err)
	}
	// Completing a released reservation fails: its response would answer nobody's request.
	if err := s.Complete(ctx, tenant, key, app.StoredResponse{Status: 201}, t0.Add(time.Hour)); err == nil {
		t.Error("Complete of a released reservation succeeded")
	}
}

func TestIdempotencyDatabaseDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewIdempotency(downClient(t), "idempotency")
	_, reserveErr := s.Reserve(ctx, "t", "r", "fp", t0.Add(time.Minute), t0)
	checks := map[string]error{
		"reserve":  reserveErr,
		"complete": s.Complete(ctx, "t", "r", app.StoredResponse{Status: 201}, t0),
		"release":  s.Release(ctx, "t", "r"),
	}
	for name, err := range checks {
		if !errors.Is(err, domain.ErrUnavailable) {
			t.Errorf("%s: error = %v, want domain.ErrUnavailable", name, err)
		}
	}
}

// TestIdempotencyWithoutReturnedItem covers the fallback read when a failed reservation
// does not come back with the existing record.
func TestIdempotencyWithoutReturnedItem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, env := newStack(t)
	s := NewIdempotency(bareErrors(t), env["WEBHOOKS_IDEMPOTENCY_TABLE"])
	lease := t0.Add(30 * time.Second)

	if _, err := s.Reserve(ctx, "t", "r", "fp-1", lease, t0); err != nil {
		t.Fatal(err)
	}
	_, err := s.Reserve(ctx, "t", "r", "fp-1", lease, t0)
	wantReason(t, err, domain.ReasonRequestInProgress)
	_, err = s.Reserve(ctx, "t", "r", "fp-2", lease, t0)
	wantReason(t, err, domain.ReasonIdempotencyReused)
	resp := app.StoredResponse{Status: 202, ContentType: "application/json", Body: []byte(`{}`)}
	if err := s.Complete(ctx, "t", "r", resp, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	stored, err := s.Reserve(ctx, "t", "r", "fp-1", lease, t0)
	if err != nil || stored == nil || stored.Status != 202 {
		t.Fatalf("Reserve = %+v, %v; want the stored 202", stored, err)
	}
}
