package app_test

import (
	"context"
	"errors"
	"testing"

	"github.com/datajetty/webhooks/shared/app"
	"github.com/datajetty/webhooks/shared/domain"
)

// raceStore is an EndpointStore holding one endpoint whose version another writer bumps
// (as the delivery side does when it disables an endpoint) right before the first
// conflicts deletes.
type raceStore struct {
	app.EndpointStore
	ep        domain.Endpoint
	deleted   bool
	conflicts int
	deletes   int
}

func (s *raceStore) GetEndpoint(_ context.Context, tenantID, id string) (domain.Endpoint, error) {
	if s.deleted || tenantID != s.ep.TenantID || id != s.ep.ID {
		return domain.Endpoint{}, domain.NotFound("endpoint %s not found", id)
	}
	return s.ep, nil
}

func (s *raceStore) DeleteEndpoint(_ context.Context, ep domain.Endpoint, expected int64) error {
	s.deletes++
	if s.conflicts > 0 {
		s.conflicts--
		s.ep.Version++
	}
	if s.ep.Version != expected {
		return domain.Conflict(domain.ReasonVersionMismatch, "changed")
	}
	s.deleted = true
	return nil
}

func TestDeleteRetriesARaceOnlyWithoutVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ep := domain.Endpoint{TenantID: "acme", ID: domain.NewID(domain.EndpointIDPrefix), URL: "https://example.com/h", Version: 3}

	// Without a version: the race is read again and the delete goes through.
	st := &raceStore{ep: ep, conflicts: 2}
	if err := (&app.Endpoints{Store: st}).Delete(ctx, "acme", ep.ID, nil); err != nil || !st.deleted || st.deletes != 3 {
		t.Fatalf("delete without version: err %v, deleted %v after %d tries; want success on the 3rd", err, st.deleted, st.deletes)
	}
	// A writer that keeps winning: the delete gives up with the conflict.
	st = &raceStore{ep: ep, conflicts: 10}
	var de *domain.Error
	if err := (&app.Endpoints{Store: st}).Delete(ctx, "acme", ep.ID, nil); !errors.As(err, &de) || de.Reason != domain.ReasonVersionMismatch || st.deletes != 3 {
		t.Fatalf("delete against a writer that always wins: %v after %d tries", err, st.deletes)
	}
	// With the client's version: its check is the answer, never retried.
	st = &raceStore{ep: ep, conflicts: 1}
	v := int64(3)
	if err := (&app.Endpoints{Store: st}).Delete(ctx, "acme", ep.ID, &v); !errors.As(err, &de) || de.Reason != domain.ReasonVersionMismatch || st.deletes != 1 {
		t.Fatalf("delete with version during a race: %v after %d tries, want one try and a conflict", err, st.deletes)
	}
	stale := int64(2)
	if err := (&app.Endpoints{Store: &raceStore{ep: ep}}).Delete(ctx, "acme", ep.ID, &stale); !errors.As(err, &de) || de.Reason != domain.ReasonVersionMismatch {
		t.Fatalf("delete with a stale version: %v", err)
	}
	// Another tenant's id, or a malformed one, is not found.
	for _, tc := range []struct{ tenant, id string }{{"globex", ep.ID}, {"acme", "ep_nope"}} {
		if err := (&app.Endpoints{Store: &raceStore{ep: ep}}).Delete(ctx, tc.tenant, tc.id, nil); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("delete %s/%s: %v, want not found", tc.tenant, tc.id, err)
		}
	}
}
